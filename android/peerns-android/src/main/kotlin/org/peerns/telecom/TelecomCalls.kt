package org.peerns.telecom

/**
 * Why a call ended, as Telecom's `DisconnectCause` tells it (the adapter maps each to its code).
 * Pure Kotlin, so that the mapping from the core's end reasons is tested on the JVM.
 */
enum class EndCause { LOCAL, REMOTE, REJECTED, MISSED, BUSY, ERROR, OTHER }

/**
 * The [EndCause] of a call that ended for the core's [reason] (`CallStatus.reason`: `hangup`,
 * `peer_hangup`, `declined`, ...); [outgoing] when we placed it.
 */
fun endCause(reason: String?, outgoing: Boolean): EndCause = when (reason) {
    "hangup" -> EndCause.LOCAL
    "peer_hangup" -> EndCause.REMOTE
    "declined" -> EndCause.REJECTED
    "busy" -> EndCause.BUSY
    // The caller gave up: missed for us; we gave up on our own call: ours.
    "cancelled" -> if (outgoing) EndCause.LOCAL else EndCause.MISSED
    "no_answer" -> EndCause.MISSED
    "unreachable", "lost" -> EndCause.ERROR
    else -> EndCause.OTHER
}

/** What a Telecom connection does when the node reports the call's state (`CallStatus.state`). */
enum class ConnectionStep { RINGING, DIALING, ACTIVE, ENDED, NONE }

/** The [ConnectionStep] for the core's call [state]. */
fun connectionStep(state: String): ConnectionStep = when (state) {
    "ringing" -> ConnectionStep.RINGING
    "dialing" -> ConnectionStep.DIALING
    "connected" -> ConnectionStep.ACTIVE
    "ended" -> ConnectionStep.ENDED
    else -> ConnectionStep.NONE
}

/** What a Telecom connection asks of the node's call: the node's call ID in each. */
interface CallControl {
    fun answer(call: String, video: Boolean)

    fun decline(call: String)

    fun hangUp(call: String)
}

/**
 * The calls Telecom knows, by the node's call ID: a connection is added when Telecom creates it
 * and removed when the call ends. Calls the node reported to Telecom that have no connection yet
 * are [pending] (so an event never reports one twice); the last step the node reported for one
 * waits for its connection ([stepFor], [put]). Thread-safe.
 */
class CallRegistry<C : Any> {
    private val connections = HashMap<String, C>()
    private val reported = HashSet<String>()
    private val early = HashMap<String, ConnectionStep>()

    /** Marks [call] as reported to Telecom; false when it was already. */
    @Synchronized
    fun report(call: String): Boolean = reported.add(call)

    @Synchronized
    fun pending(call: String): Boolean = call in reported && call !in connections

    /**
     * Adds [call]'s [connection]; returns the step the node reported while Telecom was still
     * creating it (a call answered from its notification at once), for the connection to take.
     */
    @Synchronized
    fun put(call: String, connection: C): ConnectionStep? {
        reported.add(call)
        connections[call] = connection
        return early.remove(call)
    }

    /**
     * The connection of [call], which is to take [step]; null when it has none, and then a
     * [pending] call keeps [step] for the connection Telecom is creating ([put]).
     */
    @Synchronized
    fun stepFor(call: String, step: ConnectionStep): C? {
        connections[call]?.let { return it }
        if (call in reported) early[call] = step
        return null
    }

    @Synchronized
    operator fun get(call: String): C? = connections[call]

    /** Forgets [call]; returns its connection, if it had one. */
    @Synchronized
    fun remove(call: String): C? {
        reported.remove(call)
        early.remove(call)
        return connections.remove(call)
    }

    @Synchronized
    fun calls(): Set<String> = connections.keys.toSet()
}
