// Helpers for the app's tests: real nodes of the host library on loopback, at the signaling
// server android/check.sh starts (PEERNS_SIGNAL_URL).
package org.peerns.testing

import java.io.File
import java.nio.file.Files
import java.security.SecureRandom
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeoutOrNull
import org.peerns.Peerns
import org.peerns.ffi.KeyStore
import org.peerns.ffi.KeyStoreException
import org.peerns.ffi.NodeConfig
import org.peerns.ffi.Trust

/** The signaling server of the test run. */
val SIGNAL_URL: String = System.getenv("PEERNS_SIGNAL_URL") ?: "ws://127.0.0.1:9000/"

/** A fresh temporary folder. */
fun tempDir(prefix: String): File = Files.createTempDirectory(prefix).toFile()

/** A loopback-only node configuration in [dir]. */
fun config(dir: File, name: String? = null) = NodeConfig(
    profileDir = dir.path,
    signalingUrl = SIGNAL_URL,
    iceServers = emptyList(),
    loopbackOnly = true,
    displayName = name,
)

/** A started node named [name] in a new profile. */
suspend fun startedNode(name: String): Peerns = Peerns(config(tempDir("peerns-$name"), name)).also { it.start() }

/** A platform keystore in memory that can lose its key, like a reset Android Keystore. */
class MemoryKeyStore : KeyStore {
    @Volatile
    var key: ByteArray? = null

    override fun load(): ByteArray? = key

    override fun create(): ByteArray {
        if (key != null) throw KeyStoreException.AlreadyExists()
        return ByteArray(32).also {
            SecureRandom().nextBytes(it)
            key = it
        }
    }
}

/** Polls [probe] until it returns non-null, for at most [timeout] of real time; [what] names it in the failure. */
suspend fun <T : Any> eventually(timeout: Duration = 20.seconds, what: String = "the condition", probe: suspend () -> T?): T =
    withTimeoutOrNull(timeout) {
        var value = probe()
        while (value == null) {
            delay(100)
            value = probe()
        }
        value
    } ?: throw AssertionError("timed out after $timeout waiting for $what")

/** A asks B through B's share link, B accepts: contacts both ways. */
suspend fun makeContacts(a: Peerns, b: Peerns) {
    val fa = a.identity().fingerprint
    val fb = b.identity().fingerprint
    a.requestContact(b.shareLink())
    eventually { b.requests().firstOrNull { it.fingerprint == fa } }
    b.acceptRequest(fa)
    eventually { a.contacts().firstOrNull { it.fingerprint == fb && it.trust == Trust.TRUSTED } }
}

/**
 * Runs [block] on [Dispatchers.Default] with two started nodes, ann and bob, made contacts first when [contacts];
 * both are stopped afterwards, bob even when stopping ann throws. [block]'s result is dropped; it is generic so that
 * a last expression such as `eventually { ... }` keeps its own type.
 */
suspend fun <T> withAnnAndBob(contacts: Boolean = true, block: suspend CoroutineScope.(ann: Peerns, bob: Peerns) -> T) {
    withContext(Dispatchers.Default) {
        val ann = startedNode("ann")
        val bob = startedNode("bob")
        try {
            if (contacts) makeContacts(ann, bob)
            block(ann, bob)
        } finally {
            try {
                ann.stop()
            } finally {
                bob.stop()
            }
        }
    }
}
