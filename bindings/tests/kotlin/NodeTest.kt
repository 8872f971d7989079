// The Kotlin wrapper (android/peerns-android/src/main/kotlin/org/peerns) over the generated
// bindings, on the JVM against the host library: two nodes, the signaling server started by
// run_kotlin.sh (PEERNS_SIGNAL_URL), loopback WebRTC. The same scenario as tests/python.
package org.peerns.test

import java.io.File
import java.nio.file.Path
import java.security.SecureRandom
import java.util.Collections
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import org.peerns.NodeStatus
import org.peerns.Peerns
import org.peerns.ffi.BackupListener
import org.peerns.ffi.CallKinds
import org.peerns.ffi.EncoderControlListener
import org.peerns.ffi.GroupCallFrame
import org.peerns.ffi.GroupCallFrameListener
import org.peerns.ffi.GroupCallPhase
import org.peerns.ffi.GroupEvent
import org.peerns.ffi.GroupFileTransfer
import org.peerns.ffi.GroupListener
import org.peerns.ffi.GroupMembership
import org.peerns.ffi.MediaFrame
import org.peerns.ffi.MediaFrameListener
import org.peerns.ffi.ChatMessage
import org.peerns.ffi.KeyStore
import org.peerns.ffi.KeyStoreException
import org.peerns.ffi.LogLevel
import org.peerns.ffi.MessageKind
import org.peerns.ffi.MessageStatus
import org.peerns.ffi.NetworkKind
import org.peerns.ffi.NodeConfig
import org.peerns.ffi.NodeEvent
import org.peerns.ffi.PeernsNotification
import org.peerns.ffi.RpcBackupProgress
import org.peerns.ffi.RpcBackupSummary
import org.peerns.ffi.RpcRoot
import org.peerns.ffi.NotificationCategory
import org.peerns.ffi.Notifier
import org.peerns.ffi.PeernsException
import org.peerns.ffi.SignalingState
import org.peerns.ffi.Trust
import org.peerns.ffi.setLogLevel

private val URL = System.getenv("PEERNS_SIGNAL_URL") ?: "ws://127.0.0.1:9000/"

private fun config(dir: Path, name: String? = null, url: String = URL, ice: List<String> = emptyList()) =
    NodeConfig(
        profileDir = dir.toString(),
        signalingUrl = url,
        iceServers = ice,
        loopbackOnly = true,
        displayName = name,
    )

/** Collects [flow] in the background into [items]. */
private class Collector<T>(scope: CoroutineScope, flow: Flow<T>) {
    val items = MutableStateFlow<List<T>>(emptyList())

    // Unconfined: the flow subscribes before launch returns, so nothing sent next is missed.
    val job = scope.launch(Dispatchers.Unconfined) { flow.collect { v -> items.update { it + v } } }

    suspend fun await(timeout: Duration = 10.seconds, done: (List<T>) -> Boolean): List<T> =
        withTimeoutOrNull(timeout) { items.first(done) }
            ?: throw AssertionError("timed out; collected: ${items.value}")
}

private fun dataFrom(events: List<NodeEvent>, fingerprint: String) =
    events.filterIsInstance<NodeEvent.DataReceived>().filter { it.fingerprint == fingerprint }.map { it.data.decodeToString() }

/** A asks B through B's share link, B accepts: contacts both ways (raw data needs that). */
private suspend fun makeContacts(scope: CoroutineScope, a: Peerns, b: Peerns) {
    val fa = a.identity().fingerprint
    val fb = b.identity().fingerprint
    val ea = Collector(scope, a.events)
    val eb = Collector(scope, b.events)
    try {
        val request = a.requestContact(b.shareLink())
        assertTrue(request.outgoing)
        assertEquals(fb, request.fingerprint)
        eb.await { ev -> ev.any { it is NodeEvent.ContactRequest && it.fingerprint == fa } }
        assertEquals(Trust.TRUSTED, b.acceptRequest(fa).trust)
        ea.await { ev -> ev.any { it is NodeEvent.ContactAdded && it.fingerprint == fb } }
    } finally {
        ea.job.cancel()
        eb.job.cancel()
    }
}

/** A platform keystore in memory (a phone keeps the key in its secure hardware). */
private class MemoryKeyStore : KeyStore {
    var key: ByteArray? = null
    val calls: MutableList<String> = Collections.synchronizedList(mutableListOf())

    override fun load(): ByteArray? {
        calls += "load"
        return key
    }

    override fun create(): ByteArray {
        calls += "create"
        if (key != null) throw KeyStoreException.AlreadyExists()
        return ByteArray(32).also { SecureRandom().nextBytes(it); key = it }
    }
}

/** A keystore whose every call fails with [failure]. */
private class FailingKeyStore(private val failure: () -> Exception) : KeyStore {
    override fun load(): ByteArray? = throw failure()
    override fun create(): ByteArray = throw failure()
}

private class Notifications : Notifier {
    val posted = MutableStateFlow<List<PeernsNotification>>(emptyList())

    override fun notify(notification: PeernsNotification) = posted.update { it + notification }

    suspend fun await(count: Int): List<PeernsNotification> =
        withTimeoutOrNull(10.seconds) { posted.first { it.size >= count } }
            ?: throw AssertionError("timed out; posted: ${posted.value}")
}

/**
 * Runs a test body on one thread (runBlocking's event loop, which nothing may block), bounded in
 * time: on timeout every collector is cancelled and the test fails instead of hanging.
 */
private fun test(body: suspend CoroutineScope.() -> Unit) = runBlocking { withTimeout(30.seconds) { body() } }

/** Starts the nodes (a start returns at once, offline) and waits until they are registered. */
private suspend fun startAll(vararg nodes: Peerns) = coroutineScope {
    nodes.map { async { it.start() } }.awaitAll()
    nodes.map { async { assertTrue(it.waitConnected(10_000uL), "registered") } }.awaitAll()
}

private suspend fun stopAll(vararg nodes: Peerns) = coroutineScope {
    nodes.map { async { it.stop() } }.awaitAll()
}

class NodeTest {
    @Test
    fun `two nodes exchange bytes and events arrive through the flow`(
        @TempDir da: Path,
        @TempDir db: Path,
    ) = test {
        val notes = Notifications()
        val a = Peerns(config(da, "alice"), notifier = notes)
        val b = Peerns(config(db))
        assertIs<SignalingState.Offline>(a.signalingState())
        startAll(a, b)
        val ida = a.identity()
        val idb = b.identity()
        val eb = Collector(this, b.events)
        try {
            assertEquals(SignalingState.Connected, a.signalingState())
            assertEquals(SignalingState.Connected, b.signalingState())
            assertTrue(Regex("[0-9a-f]{64}").matches(ida.fingerprint), ida.fingerprint)
            assertTrue(ida.short.isNotEmpty())
            assertTrue(ida.peerId.startsWith("peerns2-"), ida.peerId)
            assertEquals("alice", ida.displayName)
            assertNull(idb.displayName)
            b.setDisplayName("bob")
            assertEquals("bob", b.identity().displayName)

            val ea = Collector(this, a.events)

            // Peers are addressed by fingerprint. Not connected yet: a coarse, typed error;
            // not a contact: no route to dial.
            assertFailsWith<PeernsException.Network> { a.send(idb.fingerprint, "too early".encodeToByteArray()) }
            assertFailsWith<PeernsException.NotAllowed> { a.connect(idb.fingerprint) }
            assertFailsWith<PeernsException.InvalidInput> { a.connect(idb.peerId) }
            makeContacts(this, a, b)
            a.connect(idb.fingerprint)

            val msgs = (0 until 10).map { "a->b $it" }
            for (m in msgs) a.send(idb.fingerprint, m.encodeToByteArray())
            val events = eb.await { dataFrom(it, ida.fingerprint).size == 10 }
            assertEquals(msgs, dataFrom(events, ida.fingerprint))
            val connected = events.indexOfFirst { it is NodeEvent.PeerConnected }
            val firstData = events.indexOfFirst { it is NodeEvent.DataReceived }
            assertTrue(connected in 0 until firstData, events.toString())
            assertEquals(NodeEvent.PeerConnected(ida.peerId, ida.fingerprint), events[connected])

            // B answers over the same connection.
            b.connect(ida.fingerprint)
            for (m in listOf("pong 1", "pong 2")) b.send(ida.fingerprint, m.encodeToByteArray())
            val back = ea.await { dataFrom(it, idb.fingerprint).size == 2 }
            assertEquals(listOf("pong 1", "pong 2"), dataFrom(back, idb.fingerprint))
            assertContains(back, NodeEvent.PeerConnected(idb.peerId, idb.fingerprint))

            // Cancelling one collector leaves the others subscribed.
            val ea2 = Collector(this, a.events)
            ea.job.cancelAndJoin()
            b.send(ida.fingerprint, "after cancel".encodeToByteArray())
            assertEquals(
                listOf("after cancel"),
                dataFrom(ea2.await { dataFrom(it, idb.fingerprint).isNotEmpty() }, idb.fingerprint),
            )
            assertEquals(2, dataFrom(ea.items.value, idb.fingerprint).size)
            assertTrue(notes.posted.value.isEmpty(), "raw data raises no notification")

            b.networkChanged(NetworkKind.WIFI, "wlan0")
        } finally {
            stopAll(a, b)
        }
        assertIs<SignalingState.Offline>(a.signalingState())
        assertFailsWith<PeernsException.Closed> { a.connect(idb.fingerprint) }
        assertFailsWith<PeernsException.Closed> { b.networkChanged(NetworkKind.NONE, "") }
        // Stopping through the wrapper completes its flows.
        withTimeout(5.seconds) { eb.job.join() }
        a.close()
        b.close()
    }

    @Test
    fun `status folds signaling state and peers`(@TempDir da: Path, @TempDir db: Path) = test {
        val a = Peerns(config(da))
        val b = Peerns(config(db))
        startAll(a, b)
        try {
            val sa = Collector(this, a.status)
            assertEquals(NodeStatus(SignalingState.Connected), sa.await { it.isNotEmpty() }.first())
            val idb = b.identity()
            makeContacts(this, a, b)
            sa.await { it.last().peers == setOf(idb.fingerprint) }

            // B leaves: its connection closes and A's status drops it.
            b.stop()
            sa.await { it.last().peers.isEmpty() }
            a.stop()
            // ... and the flow ends with the node.
            withTimeout(5.seconds) { sa.job.join() }
            assertTrue(sa.items.value.all { it.signaling == SignalingState.Connected }, sa.items.value.toString())
        } finally {
            stopAll(a, b)
        }
    }

    @Test
    fun `suspend calls run concurrently on one thread and can be cancelled`(
        @TempDir da: Path,
        @TempDir db: Path,
        @TempDir dc: Path,
    ) = test {
        val a = Peerns(config(da))
        val b = Peerns(config(db))
        val gone = Peerns(config(dc))
        startAll(a, b, gone)
        val ghost = gone.identity().fingerprint
        makeContacts(this, a, gone)
        gone.stop()
        try {
            // Nobody answers for a contact that left: cancelling the pending call works and
            // leaves the node usable.
            withTimeout(10.seconds) { while (a.isOnline(ghost)) delay(20) }
            assertNull(withTimeoutOrNull(300.milliseconds) { a.connect(ghost) })

            val idb = b.identity()
            makeContacts(this, a, b)
            val eb = Collector(this, b.events)
            val msgs = (0 until 20).map { "concurrent $it" }
            msgs.map { m -> async { a.send(idb.fingerprint, m.encodeToByteArray()) } }.awaitAll()
            val events = eb.await { dataFrom(it, a.identity().fingerprint).size == msgs.size }
            assertEquals(msgs.toSet(), dataFrom(events, a.identity().fingerprint).toSet())
        } finally {
            stopAll(a, b)
        }
    }

    @Test
    fun `contacts request and accept, then a message is received and delivered`(
        @TempDir da: Path,
        @TempDir db: Path,
    ) = test {
        val a = Peerns(config(da, "ada"))
        val b = Peerns(config(db, "bob"))
        startAll(a, b)
        val fa = a.identity().fingerprint
        val fb = b.identity().fingerprint
        val ea = Collector(this, a.events)
        val eb = Collector(this, b.events)
        try {
            assertFailsWith<PeernsException.NotAllowed> { a.sendMessage(fb, "not a contact yet") }
            assertFailsWith<PeernsException.InvalidInput> { a.sendMessage("not-a-fingerprint", "hi") }

            a.requestContact(b.shareLink())
            val request = eb.await { ev -> ev.any { it is NodeEvent.ContactRequest } }
                .filterIsInstance<NodeEvent.ContactRequest>().single()
            assertEquals(NodeEvent.ContactRequest(fa, "ada", a.identity().peerId), request)
            assertEquals(listOf(fa), b.requests().map { it.fingerprint })
            b.acceptRequest(fa)
            ea.await { it.contains(NodeEvent.ContactAdded(fb, "bob")) }
            assertEquals(listOf("bob"), a.contacts().map { it.name })

            val sent = a.sendMessage(fb, "hello bob")
            assertTrue(sent.outgoing)
            assertEquals(MessageKind.TEXT, sent.kind)
            val received: ChatMessage = eb.await { ev -> ev.any { it is NodeEvent.MessageReceived } }
                .filterIsInstance<NodeEvent.MessageReceived>().single().message
            assertEquals(sent.id, received.id)
            assertEquals("hello bob", received.text)
            assertEquals(fa, received.conversation)
            assertFalse(received.outgoing)
            ea.await { ev ->
                ev.any { it is NodeEvent.MessageStatus && it.conversation == fb && it.status == MessageStatus.DELIVERED }
            }
            assertEquals(1UL, b.conversations().single().unread)
            assertTrue(a.ping(fb) < 5000UL)
        } finally {
            stopAll(a, b)
        }
    }

    @Test
    fun `constructor rejects bad config`(@TempDir d: Path) {
        assertFailsWith<PeernsException.InvalidInput> { Peerns(config(Path.of(""))) }
        assertFailsWith<PeernsException.InvalidInput> { Peerns(config(d, ice = listOf("http://not-ice"))) }
    }

    @Test
    fun `bad signaling url fails start and a stopped node has no events`(@TempDir d: Path) = test {
        val node = Peerns(config(d, url = "ftp://nowhere"))
        assertFailsWith<PeernsException.InvalidInput> { node.start() }
        assertFailsWith<PeernsException.Closed> { node.events.first() }
        node.close()
    }

    @Test
    fun `platform keystore and notifier`(@TempDir da: Path, @TempDir db: Path, @TempDir dc: Path) = test {
        // The identity key lives in the platform keystore; a contact request, and a message whose
        // chat is not open, become notifications.
        val keys = MemoryKeyStore()
        val notes = Notifications()
        val a = Peerns(config(da, "alice"))
        val b = Peerns(config(db), keystore = keys, notifier = notes)
        startAll(a, b)
        val idb = b.identity()
        try {
            assertEquals(listOf("load", "create"), keys.calls.toList())
            assertEquals(32, keys.key?.size)
            assertFalse(File(db.toFile(), "identity.key").exists())
            makeContacts(this, a, b)
            val request = notes.await(1).single()
            assertEquals(NotificationCategory.CONTACT_REQUEST, request.category)
            assertEquals("alice", request.title)
            a.sendMessage(idb.fingerprint, "hé, are you there?")
            val n = notes.await(2).last()
            assertEquals(NotificationCategory.MESSAGE, n.category)
            assertEquals("alice", n.title)
            assertEquals("hé, are you there?", n.body)
            assertEquals(a.identity().fingerprint, n.conversation)
        } finally {
            stopAll(a, b)
        }

        // The same platform key opens the same identity.
        val again = Peerns(config(db), keystore = keys)
        again.start()
        assertEquals(idb.fingerprint, again.identity().fingerprint)
        assertEquals("load", keys.calls.last())
        again.stop()

        // Keystore failures are clear errors, and no identity is made up.
        val locked = Peerns(config(dc, name = "x"), keystore = FailingKeyStore { KeyStoreException.Unavailable("device locked") })
        assertContains(assertFailsWith<PeernsException.Crypto> { locked.start() }.message.orEmpty(), "device locked")
        val buggy = Peerns(config(dc), keystore = FailingKeyStore { IllegalStateException("bug in the adapter") })
        assertFailsWith<PeernsException.Crypto> { buggy.start() }
        val short = object : KeyStore {
            override fun load(): ByteArray? = ByteArray(16)
            override fun create(): ByteArray = throw KeyStoreException.AlreadyExists()
        }
        val corrupt = Peerns(config(dc), keystore = short)
        assertContains(assertFailsWith<PeernsException.Crypto> { corrupt.start() }.message.orEmpty(), "16 bytes")
        assertFalse(File(dc.toFile(), "identity.key").exists())
    }

    @Test
    fun `log level can change at run time`(@TempDir d: Path) = test {
        // run_kotlin.sh sends this JVM's stderr, where the core logs on the host, to a file.
        val log = System.getenv("PEERNS_STDERR")?.let(::File)
        assumeTrue(log != null, "PEERNS_STDERR is not set")
        suspend fun cycle(dir: Path): String {
            val node = Peerns(config(dir))
            node.start()
            val id = node.identity().peerId
            node.stop()
            return id
        }
        setLogLevel(LogLevel.INFO)
        val loud = cycle(d.resolve("loud"))
        setLogLevel(LogLevel.ERROR)
        val quiet = cycle(d.resolve("quiet"))
        setLogLevel(LogLevel.INFO)
        val text = log!!.readText()
        assertContains(text, Regex("INFO peerns_core::node: node started peer_id=$loud"))
        assertFalse("node started peer_id=$quiet" in text, "ERROR level still logged INFO lines")
    }

    @Test
    fun `a call rings, is accepted, hung up and logged on both sides`(@TempDir da: Path, @TempDir db: Path) = test {
        val notes = Notifications()
        val a = Peerns(config(da, "ada"))
        val b = Peerns(config(db, "bob"), notifier = notes)
        startAll(a, b)
        val ea = Collector(this, a.events)
        val eb = Collector(this, b.events)
        try {
            makeContacts(this, a, b)
            val fa = a.identity().fingerprint
            val fb = b.identity().fingerprint
            val av = CallKinds(audio = true, video = true, screen = false)
            val call = a.startCall(fb, av)
            val ring = eb.await { ev -> ev.any { it is NodeEvent.IncomingCall && it.call == call } }
                .filterIsInstance<NodeEvent.IncomingCall>().single { it.call == call }
            assertEquals(fa, ring.fingerprint)
            assertEquals(av, ring.kinds)
            // The notifier runs on a thread of its own: the ring may be posted just after the event.
            withTimeoutOrNull(10.seconds) { notes.posted.first { l -> l.any { it.category == NotificationCategory.INCOMING_CALL } } }
                ?: throw AssertionError("no incoming call notification; posted: ${notes.posted.value}")
            fun reached(ev: List<NodeEvent>, state: String, reason: String? = null) =
                ev.any { it is NodeEvent.CallState && it.call == call && it.status.state == state && it.status.reason == reason }
            ea.await { reached(it, "ringing") }
            b.acceptCall(call, CallKinds(audio = true, video = false, screen = false))
            ea.await { reached(it, "connected") }
            assertEquals("connected", a.activeCall()?.status?.state)
            a.hangUp(call)
            eb.await { reached(it, "ended", "peer_hangup") }
            ea.await { ev -> ev.any { it is NodeEvent.CallLogged } }
            assertNull(a.activeCall())
            val entry = a.callLog(null, 10u).single()
            assertEquals(listOf(call, fb, "completed"), listOf(entry.call, entry.fingerprint, entry.outcome))
            assertTrue(entry.outgoing)
            eb.await { ev -> ev.any { it is NodeEvent.CallLogged } }
            assertEquals(listOf("completed"), b.callLog(fa, 10u).map { it.outcome })
        } finally {
            ea.job.cancel()
            eb.job.cancel()
            stopAll(a, b)
        }
    }

    @Test
    fun `a call's encoded frames go from one node's source to the other's sink`(@TempDir da: Path, @TempDir db: Path) = test {
        val a = Peerns(config(da, "ada"))
        val b = Peerns(config(db, "bob"))
        startAll(a, b)
        val ea = Collector(this, a.events)
        val eb = Collector(this, b.events)
        try {
            makeContacts(this, a, b)
            val call = a.startCall(b.identity().fingerprint, CallKinds(audio = true, video = true, screen = false))
            eb.await { ev -> ev.any { it is NodeEvent.IncomingCall && it.call == call } }
            b.acceptCall(call, CallKinds(audio = true, video = false, screen = false))
            ea.await { ev -> ev.any { it is NodeEvent.CallMediaConnected && it.call == call } }
            eb.await { ev -> ev.any { it is NodeEvent.CallMediaConnected && it.call == call } }
            val keyframes = MutableStateFlow(0)
            val encoder = object : EncoderControlListener {
                override fun requestKeyframe() = keyframes.update { it + 1 }
                override fun targetBitrate(bps: ULong) {}
            }
            val video = a.callMediaSource(call, "video", encoder)
            val received = Collections.synchronizedList(mutableListOf<MediaFrame>())
            val sinks = b.callMediaSinks(call, object : MediaFrameListener {
                override fun onFrame(frame: MediaFrame) { received += frame }
            })
            val start = byteArrayOf(0, 0, 0, 1)
            for (i in 0 until 40) {
                val marker = "PEERNS%04d".format(i).toByteArray() + ByteArray(40) { it.toByte() }
                val key = i % 10 == 0
                val au = if (key) {
                    start + byteArrayOf(0x67, 0x42, 0xc0.toByte(), 0x1f, 0xaa.toByte()) + start +
                        byteArrayOf(0x68, 0xce.toByte(), 0x3c, 0x80.toByte()) + start + byteArrayOf(0x65) + marker
                } else {
                    start + byteArrayOf(0x41) + marker
                }
                assertTrue(video.pushFrame((i * 33_333).toULong(), key, au))
                delay(20)
            }
            withTimeout(10.seconds) { while (received.size < 36) delay(50) }
            val numbers = received.map { String(it.data).substringAfter("PEERNS").take(4).toInt() }
            assertEquals(numbers.sorted(), numbers, "in order")
            assertTrue(received.all { it.track == "video" && it.keyframe == (String(it.data).substringAfter("PEERNS").take(4).toInt() % 10 == 0) })
            sinks.requestKeyframe("video")
            withTimeout(5.seconds) { keyframes.first { it >= 1 } }
            sinks.cancel()
            a.hangUp(call)
            eb.await { ev -> ev.any { it is NodeEvent.CallLogged } }
        } finally {
            ea.job.cancel()
            eb.job.cancel()
            stopAll(a, b)
        }
    }

    @Test
    fun `a group is created, joined by link, and both histories match`(@TempDir da: Path, @TempDir db: Path) = test {
        val a = Peerns(config(da, "ada"))
        val b = Peerns(config(db, "bob"))
        startAll(a, b)
        val heard = MutableStateFlow<List<GroupEvent>>(emptyList())
        val sub = b.subscribeGroups(object : GroupListener {
            override fun onGroupEvent(event: GroupEvent) = heard.update { it + event }
        })
        try {
            val gid = a.groupCreate("Trip")
            val link = a.groupInvite(gid, b.identity().fingerprint)
            assertEquals(gid, b.groupJoin(link))
            val mine = a.groupSend(gid, "hello from ada")
            var theirs = null as org.peerns.ffi.GroupMessage?
            while (theirs == null) {
                theirs = try {
                    b.groupSend(gid, "hello from bob")
                } catch (e: PeernsException.NotAllowed) {
                    delay(50)
                    null
                }
            }
            withTimeout(20.seconds) {
                while (a.groupHistory(gid, null, 10u).messages.size < 2 ||
                    b.groupHistory(gid, null, 10u).messages.size < 2) delay(100)
            }
            val history = a.groupHistory(gid, null, 10u).messages
            assertEquals(history, b.groupHistory(gid, null, 10u).messages)
            assertEquals(setOf(mine.id, theirs.id), history.map { it.id }.toSet())
            assertEquals(a.identity().fingerprint, history.first { it.id == mine.id }.author)
            withTimeout(5.seconds) {
                heard.first { ev -> ev.count { it is GroupEvent.Message } == 2 }
            }
            val group = b.groups().single()
            assertEquals("Trip", group.name)
            assertEquals(GroupMembership.MEMBER, group.membership)
            assertEquals(2, group.members.size)
            // A file shared in the group reaches the other member whole, through the router.
            val data = ByteArray(150_000) { (it % 251).toByte() }
            val src = da.resolve("map.png").toFile().apply { writeBytes(data) }
            val shared = a.groupSendFile(gid, src.path)
            val ref = shared.file!!
            assertEquals("map.png", ref.name)
            assertEquals("image/png", ref.mime)
            withTimeout(20.seconds) {
                heard.first { ev -> ev.any { it is GroupEvent.FileDone && it.file == ref.id } }
            }
            val got = b.groupFile(gid, ref.id)!!
            assertEquals(GroupFileTransfer.DONE, got.state)
            assertEquals(a.identity().fingerprint, got.author)
            assertTrue(File(got.path!!).readBytes().contentEquals(data))
        } finally {
            sub.cancel()
            stopAll(a, b)
        }
    }

    @Test
    fun `two members of a group call hear and see each other through its router`(@TempDir da: Path, @TempDir db: Path) = test {
        val a = Peerns(config(da, "ada"))
        val b = Peerns(config(db, "bob"))
        startAll(a, b)
        val heard = MutableStateFlow<List<GroupEvent>>(emptyList())
        val sub = b.subscribeGroups(object : GroupListener {
            override fun onGroupEvent(event: GroupEvent) = heard.update { it + event }
        })
        try {
            val gid = a.groupCreate("Call")
            // The creator routes before anyone joins (see test_group_call.py).
            withTimeout(10.seconds) { while (!a.groups().single().router) delay(50) }
            assertEquals(gid, b.groupJoin(a.groupInvite(gid, b.identity().fingerprint)))
            val av = CallKinds(audio = true, video = true, screen = false)
            val received = listOf(a, b).map { Collections.synchronizedList(mutableListOf<GroupCallFrame>()) }
            val encoder = object : EncoderControlListener {
                override fun requestKeyframe() {}
                override fun targetBitrate(bps: ULong) {}
            }
            val calls = listOf(a, b).mapIndexed { i, node ->
                var call = null as org.peerns.ffi.GroupCall?
                while (call == null) {
                    call = try {
                        node.groupCallJoin(gid, av, object : GroupCallFrameListener {
                            override fun onFrame(frame: GroupCallFrame) { received[i] += frame }
                        }, encoder)
                    } catch (e: PeernsException.NotAllowed) {
                        delay(50)
                        null
                    }
                }
                call
            }
            val start = byteArrayOf(0, 0, 0, 1)
            val fps = listOf(a, b).map { it.identity().fingerprint }
            withTimeout(20.seconds) {
                var i = 0
                while (received.withIndex().any { (n, got) -> got.none { it.kind == "video" && it.sender == fps[1 - n] } }) {
                    val key = i % 10 == 0
                    val au = if (key) {
                        start + byteArrayOf(0x67, 0x42, 0xc0.toByte(), 0x1f, 0xaa.toByte()) + start +
                            byteArrayOf(0x68, 0xce.toByte(), 0x3c, 0x80.toByte()) + start + byteArrayOf(0x65) + ByteArray(40)
                    } else {
                        start + byteArrayOf(0x41) + ByteArray(40)
                    }
                    for (call in calls) call.pushFrame("video", (i * 33_333).toULong(), key, au)
                    i++
                    delay(30)
                }
            }
            assertTrue(received.flatten().all { it.codec == "h264" })
            withTimeout(10.seconds) {
                heard.first { ev ->
                    ev.filterIsInstance<GroupEvent.CallRoster>().lastOrNull()?.participants?.map { it.fingerprint }?.toSet() == fps.toSet()
                }
            }
            assertEquals(GroupCallPhase.CONNECTED, heard.value.filterIsInstance<GroupEvent.CallPhase>().last().phase)
            calls.forEach { it.stop() }
            b.groupCallLeave(gid)
        } finally {
            sub.cancel()
            stopAll(a, b)
        }
    }

    @Test
    fun `a folder is backed up with progress, then skipped, on Wi-Fi only, and the monitor viewer answers the armed device`(
        @TempDir da: Path,
        @TempDir db: Path,
        @TempDir incoming: Path,
        @TempDir src: Path,
    ) = test {
        val a = Peerns(config(da, "phone"))
        val b = Peerns(config(db, "desktop"))
        startAll(a, b)
        try {
            makeContacts(this, a, b)
            val fa = a.identity().fingerprint
            val fb = b.identity().fingerprint
            val photos = src.resolve("photos").toFile()
            File(photos, "2026").mkdirs()
            val files = mapOf(
                "a.jpg" to ByteArray(1000) { it.toByte() },
                "2026/video.mp4" to ByteArray(3 shl 20).also { SecureRandom().nextBytes(it) },
            )
            files.forEach { (rel, data) -> File(photos, rel).writeBytes(data) }
            b.rpcServe(listOf(RpcRoot("incoming", incoming.toString())))
            b.setTrust(fa, Trust.FULL_ACCESS)
            b.rpcGrant(fa, listOf("fs:write:/incoming/**"))

            val steps = Collections.synchronizedList(mutableListOf<RpcBackupProgress>())
            val listener = object : BackupListener {
                override fun onBackupProgress(progress: RpcBackupProgress) {
                    steps += progress
                }
            }
            val sum = a.rpcBackup(fb, listOf(photos.path), "/incoming", listener)
            assertEquals(RpcBackupSummary(2UL, (1000 + (3 shl 20)).toULong(), 0UL, 0UL), sum)
            files.forEach { (rel, data) ->
                assertTrue(data.contentEquals(incoming.resolve("photos/$rel").toFile().readBytes()), rel)
            }
            val video = steps.filter { it.path == "/incoming/photos/2026/video.mp4" }
            assertTrue(video.size >= 3, "$video")
            assertEquals((3 shl 20).toULong(), video.last().bytes)
            assertTrue(steps.all { it.filesTotal == 2UL })

            val again = a.rpcBackup(fb, listOf(photos.path), "/incoming", listener)
            assertEquals(RpcBackupSummary(0UL, 0UL, 2UL, 0UL), again)

            // On Wi-Fi only: it waits while the network is metered and goes on once it is not.
            File(photos, "new.jpg").writeBytes(ByteArray(5000) { 7 })
            a.networkChanged(NetworkKind.WIFI, "test:lo", metered = true)
            steps.clear()
            val waiting = async {
                a.rpcBackup(fb, listOf(photos.path), "/incoming", listener, unmeteredOnly = true)
            }
            delay(1000)
            assertFalse(waiting.isCompleted)
            assertEquals(listOf(true), steps.map { it.waiting })
            assertFalse(incoming.resolve("photos/new.jpg").toFile().exists())
            a.networkChanged(NetworkKind.CELLULAR, "test:lo") // metered by its kind
            delay(300)
            assertFalse(waiting.isCompleted)
            a.networkChanged(NetworkKind.WIFI, "test:lo")
            assertEquals(RpcBackupSummary(1UL, 5000UL, 2UL, 0UL), waiting.await())
            assertFalse(steps.last().waiting)
            b.rpcRevoke(fa, emptyList())
            assertFailsWith<PeernsException.NotAllowed> {
                a.rpcBackup(fb, listOf(photos.path), "/incoming", listener)
            }

            // The baby monitor: the viewer answers the call of the armed device it asked.
            b.rpcGrant(fa, listOf("media:stream:camera:environment"))
            assertFailsWith<PeernsException.NotAllowed> { a.rpcWatch(fb, "environment", 10_000UL) }
            b.rpcArmCamera("environment")
            val call = a.rpcWatch(fb, "environment", 10_000UL)
            assertEquals(call, a.activeCall()?.call)
            assertFalse(a.activeCall()!!.outgoing)
            a.hangUp(call)
        } finally {
            stopAll(a, b)
        }
    }
}
