package org.peerns

import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.channels.trySendBlocking
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.drop
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.scan
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import org.peerns.ffi.EventListener
import org.peerns.ffi.GroupEvent
import org.peerns.ffi.GroupListener
import org.peerns.ffi.KeyStore
import org.peerns.ffi.LocationProvider
import org.peerns.ffi.NodeConfig
import org.peerns.ffi.NodeEvent
import org.peerns.ffi.Notifier
import org.peerns.ffi.PeernsException
import org.peerns.ffi.PeernsNode
import org.peerns.ffi.PeernsNodeInterface

/**
 * A PeerNS node for Kotlin: the generated [PeernsNode] with its events as flows.
 *
 * Every call of [PeernsNodeInterface] is delegated to the library, so a call exported by the
 * Rust side later appears here with no wrapper code. The suspend calls run on the library's own
 * runtime and never block the calling thread; failures are typed [PeernsException]s.
 *
 * This class adds [events], [groupEvents] and [status], which end when [stop] is called through it. Pure
 * Kotlin (no `android.*`): the JVM tests exercise it against the host library.
 */
class Peerns private constructor(private val node: PeernsNode) :
    PeernsNodeInterface by node,
    AutoCloseable {

    /** Checks [config] (no I/O); the platform objects are optional, see [PeernsNode]. */
    constructor(
        config: NodeConfig,
        keystore: KeyStore? = null,
        notifier: Notifier? = null,
        location: LocationProvider? = null,
    ) : this(PeernsNode(config, keystore, notifier, location))

    /** Counts [stop] calls; a flow ends when the count moves past the one it started under. */
    private val stops = MutableStateFlow(0L)

    override suspend fun stop() {
        try {
            node.stop()
        } finally {
            stops.update { it + 1 }
        }
    }

    /**
     * Every event from collection on, in order. Collecting fails with [PeernsException.Closed]
     * when the node is not running and completes when it is stopped; cancelling the collector
     * cancels the subscription. A slow collector delays delivery, it never loses events.
     */
    val events: Flow<NodeEvent>
        get() = subscription(current = null)

    /**
     * The signaling state and connected peers: the current signaling state first, then one
     * value per event. Only connections opened after collection starts are seen, so collect it
     * right after [start]. Same lifetime as [events].
     */
    val status: Flow<NodeStatus>
        get() = subscription(current = { NodeEvent.SignalingState(node.signalingState()) })
            .scan(NodeStatus()) { status, event -> status.after(event) }
            .drop(1)

    /**
     * Every group event (messages, members, roles, the group calls' roster and our phase) from
     * collection on, in order; same lifetime and back-pressure as [events].
     */
    val groupEvents: Flow<GroupEvent>
        get() = callbackFlow {
            val run = stops.value
            val subscription = node.subscribeGroups(object : GroupListener {
                override fun onGroupEvent(event: GroupEvent) {
                    trySendBlocking(event)
                }
            })
            launch {
                stops.first { it != run }
                channel.close()
            }
            awaitClose {
                subscription.cancel()
                subscription.close()
            }
        }

    /**
     * Subscribes, then sends [current] (read after subscribing, so no change between the two is
     * lost), then every event until the node stops.
     */
    private fun subscription(current: (() -> NodeEvent)?): Flow<NodeEvent> = callbackFlow {
        val run = stops.value
        val subscription = node.subscribe(object : EventListener {
            // A library thread that may block: wait for room rather than drop.
            override fun onEvent(event: NodeEvent) {
                trySendBlocking(event)
            }
        })
        current?.let { send(it()) }
        launch {
            stops.first { it != run }
            channel.close()
        }
        awaitClose {
            subscription.cancel()
            subscription.close()
        }
    }

    /** Frees the library object; [stop] first to close connections gracefully. */
    override fun close() = node.close()
}
