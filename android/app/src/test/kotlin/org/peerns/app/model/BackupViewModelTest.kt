package org.peerns.app.model

import com.sun.jna.Library
import com.sun.jna.Native
import java.io.File
import java.security.SecureRandom
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.test.runTest
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import org.junit.Test
import org.peerns.Peerns
import org.peerns.ffi.DocumentOpener
import org.peerns.ffi.RpcBackupSummary
import org.peerns.ffi.RpcRoot
import org.peerns.ffi.Trust
import org.peerns.testing.eventually
import org.peerns.testing.makeContacts
import org.peerns.testing.startedNode
import org.peerns.testing.tempDir
import org.peerns.testing.withAnnAndBob

class BackupViewModelTest {
    /** The desktop serves an `incoming` root the phone (at Full Access) may write to. */
    private suspend fun servedIncoming(phone: Peerns, desktop: Peerns): File {
        val phoneFp = phone.identity().fingerprint
        val incoming = tempDir("incoming")
        desktop.rpcServe(listOf(RpcRoot("incoming", incoming.path)))
        desktop.setTrust(phoneFp, Trust.FULL_ACCESS)
        desktop.rpcGrant(phoneFp, listOf("fs:write:/incoming/**"))
        return incoming
    }

    /** The C library's `open`, to hand the core real descriptors as a document provider does. */
    private interface LibC : Library {
        fun open(path: String, flags: Int): Int
    }

    /**
     * Folders kept in memory and listed as documents (as the app lists a picked folder), each
     * opened as a descriptor the core takes over; [opened] counts them.
     */
    private class DocumentFolders : BackupFolders {
        private val libc = Native.load("c", LibC::class.java)
        private var kept = emptyList<String>()
        val opened = AtomicInteger()

        override fun load() = kept

        override fun save(folders: List<String>) {
            kept = folders
        }

        override suspend fun list(folder: String): BackupSource {
            val root = File(folder)
            require(root.isDirectory) { "${root.name} cannot be read any more: choose it again" }
            val files = root.walkTopDown().filter { it.isFile }.sortedBy { it.path }.toList()
            val names = files.map { "${root.name}/${it.relativeTo(root).path}" }
            return BackupSource.Documents(
                names,
                object : DocumentOpener {
                    override fun openDocument(index: ULong): Int {
                        opened.incrementAndGet()
                        return libc.open(files[index.toInt()].path, 0).also { check(it >= 0) }
                    }
                },
            )
        }
    }

    /** A random 48 MiB file in `folder`: long enough to pause a backup in the middle of it. */
    private fun bigFile(folder: File): File =
        File(folder, "big.mp4").apply { writeBytes(ByteArray(48 shl 20).also { SecureRandom().nextBytes(it) }) }

    @Test
    fun aFolderIsBackedUpWithProgressThenSkipped() = runTest(timeout = 120.seconds) {
        withContext(Dispatchers.Default) {
            val phone = startedNode("phone")
            val desktop = startedNode("desktop")
            try {
                makeContacts(phone, desktop)
                val phoneFp = phone.identity().fingerprint
                val desktopFp = desktop.identity().fingerprint
                val incoming = servedIncoming(phone, desktop)

                val photos = File(tempDir("src"), "photos").apply { mkdirs() }
                File(photos, "a.jpg").writeBytes(ByteArray(1000) { it.toByte() })
                File(photos, "b.mp4").writeBytes(ByteArray(2 shl 20).also { SecureRandom().nextBytes(it) })

                // Each backup lists the folders as they are then (documents, as the app lists a
                // picked folder) and the core opens each in turn, nothing copied.
                val kept = DocumentFolders()
                val model = BackupViewModel(phone, store = kept)
                model.refresh()
                assertEquals(listOf(desktopFp), model.state.value.contacts.map { it.fingerprint })
                assertFalse(model.backup(desktopFp))
                assertNotNull(model.state.value.error)
                model.choose(photos.path)
                model.choose(photos.path)
                assertEquals(listOf(photos.path), model.state.value.folders)
                // Kept for the next visit.
                assertEquals(listOf(photos.path), BackupViewModel(phone, store = kept).state.value.folders)

                val descriptors = File("/proc/self/fd").list()!!.size
                assertTrue(model.backup(desktopFp))
                val done = model.state.value
                assertFalse(done.running)
                assertEquals(null, done.preparing)
                assertEquals(4, kept.opened.get(), "each opened to hash it, then to send it")
                assertEquals(descriptors, File("/proc/self/fd").list()!!.size, "the library closed each descriptor")
                assertEquals(RpcBackupSummary(2UL, (1000 + (2 shl 20)).toULong(), 0UL, 0UL), done.summary)
                assertEquals("done: 2 files sent (${1000 + (2 shl 20)} bytes), 0 already there", done.summary?.line())
                val last = assertNotNull(done.progress)
                assertEquals(2UL, last.filesTotal)
                assertTrue(File(incoming, "photos/b.mp4").readBytes().contentEquals(File(photos, "b.mp4").readBytes()))

                assertEquals("/incoming/photos/b.mp4", last.path)

                assertTrue(model.backup(desktopFp))
                assertEquals(2UL, model.state.value.summary?.skipped)
                assertEquals(6, kept.opened.get(), "opened once more each, to hash it")
                // A folder that cannot be read any more is said; the others are backed up.
                val gone = File(tempDir("src"), "gone").path
                model.choose(gone)
                assertTrue(model.backup(desktopFp))
                assertEquals(2UL, model.state.value.summary?.skipped)
                assertEquals("gone cannot be read any more: choose it again", model.state.value.error)
                model.drop(photos.path)
                assertFalse(model.backup(desktopFp))
                assertEquals("gone cannot be read any more: choose it again", model.state.value.error)
                model.drop(gone)
                model.choose(photos.path)
                val partly = RpcBackupSummary(files = 1UL, bytes = 5UL, skipped = 0UL, leftOut = 2UL, unreadable = 3UL)
                assertEquals(
                    "done: 1 file sent (5 bytes), 0 already there, 2 left out (a name a path cannot hold, or one taken twice), 3 could not be read",
                    partly.line(),
                )
                desktop.rpcRevoke(phoneFp, emptyList())
                assertFalse(model.backup(desktopFp))
                assertFalse(model.state.value.running)
            } finally {
                phone.stop()
                desktop.stop()
            }
        }
    }

    @Test
    fun severalFoldersOfDocumentsAreOneListWhoseIndexesReachTheirFolder() {
        val asked = mutableListOf<String>()
        fun folder(name: String, vararg files: String) = BackupSource.Documents(
            files.map { "$name/$it" },
            object : DocumentOpener {
                override fun openDocument(index: ULong): Int {
                    asked += "$name:$index"
                    return index.toInt()
                }
            },
        )
        val one = BackupSource.of(listOf(folder("Camera", "a.jpg", "b.jpg"), folder("Empty"), folder("Docs", "c.pdf")))
        assertTrue(one is BackupSource.Documents)
        assertEquals(listOf("Camera/a.jpg", "Camera/b.jpg", "Docs/c.pdf"), one.names)
        assertEquals(listOf(0, 1, 0), (0..2).map { one.opener.openDocument(it.toULong()) })
        assertEquals(listOf("Camera:0", "Camera:1", "Docs:0"), asked)
        val paths = BackupSource.of(listOf(BackupSource.Paths(listOf("/a")), BackupSource.Paths(listOf("/b"))))
        assertEquals(BackupSource.Paths(listOf("/a", "/b")), paths)
    }

    @Test
    fun aBackupStartedUnderBatterySaverWaitsUntilItIsOffOrStartNow() = runTest(timeout = 120.seconds) {
        withAnnAndBob { phone, desktop ->
            val desktopFp = desktop.identity().fingerprint
            val incoming = servedIncoming(phone, desktop)
            val photos = File(tempDir("src"), "photos").apply { mkdirs() }
            File(photos, "a.jpg").writeBytes(ByteArray(1000) { it.toByte() })

            val saver = MutableStateFlow(true)
            val model = BackupViewModel(phone, saver)
            assertEquals(BatterySaver.BACKUP, model.notice.first())
            model.refresh()
            model.choose(photos.path)
            val first = async { model.backup(desktopFp) }
            eventually(what = "the backup waiting") { model.state.value.takeIf { it.running && it.waitingForSaver } }
            delay(1_000)
            assertEquals(null, model.state.value.progress, "nothing sent while battery saver is on")
            assertFalse(File(incoming, "photos/a.jpg").exists())

            // Battery saver goes off: the backup goes on by itself.
            saver.value = false
            assertTrue(first.await())
            assertEquals(RpcBackupSummary(1UL, 1000UL, 0UL, 0UL), model.state.value.summary)
            assertFalse(model.state.value.waitingForSaver)
            assertNull(model.notice.first())

            // On again: a new backup waits, until the user starts it anyway.
            saver.value = true
            File(photos, "b.jpg").writeBytes(ByteArray(500) { 7 })
            val second = async { model.backup(desktopFp) }
            eventually(what = "the second backup waiting") { model.state.value.takeIf { it.waitingForSaver } }
            model.startNow()
            assertTrue(second.await())
            assertEquals(RpcBackupSummary(1UL, 500UL, 1UL, 0UL), model.state.value.summary)
            assertFalse(model.state.value.running)
        }
    }

    @Test
    fun aRunningBackupPausesWhenBatterySaverComesOnAndContinuesWhenItGoesOff() = runTest(timeout = 180.seconds) {
        withAnnAndBob { phone, desktop ->
            val desktopFp = desktop.identity().fingerprint
            val incoming = servedIncoming(phone, desktop)
            val photos = File(tempDir("src"), "photos").apply { mkdirs() }
            val big = bigFile(photos)
            val size = big.length().toInt()
            val atPeer = File(incoming, "photos/big.mp4")

            val saver = MutableStateFlow(false)
            val model = BackupViewModel(phone, saver)
            model.refresh()
            model.choose(photos.path)
            val backup = async { model.backup(desktopFp) }
            // Battery saver comes on once the peer has acknowledged part of the file.
            withTimeout(60.seconds) { model.state.first { (it.progress?.bytes ?: 0UL) > 0UL } }
            saver.value = true
            eventually(what = "the backup paused") { model.state.value.takeIf { it.running && it.pausedForSaver } }
            assertFalse(model.state.value.waitingForSaver)
            delay(500)
            val at = assertNotNull(model.state.value.progress)
            assertTrue(at.bytes < size.toULong(), "paused before the end of the file")
            delay(2_000)
            assertEquals(at, model.state.value.progress, "no progress while paused")
            assertTrue(model.state.value.pausedForSaver)
            assertFalse(backup.isCompleted)
            assertFalse(atPeer.exists() && atPeer.length() == size.toLong(), "the file is not complete at the peer")

            // Off again: the same backup goes on by itself, resuming the file.
            saver.value = false
            assertTrue(backup.await())
            val done = model.state.value
            assertFalse(done.running)
            assertFalse(done.pausedForSaver)
            val summary = assertNotNull(done.summary)
            assertEquals(1UL, summary.files)
            assertTrue(summary.bytes < size.toULong(), "resumed, not sent again whole: ${summary.bytes}")
            assertTrue(atPeer.readBytes().contentEquals(big.readBytes()))
        }
    }

    @Test
    fun aPausedBackupContinuesNowOrIsCancelledForGood() = runTest(timeout = 180.seconds) {
        withAnnAndBob { phone, desktop ->
            val desktopFp = desktop.identity().fingerprint
            val incoming = servedIncoming(phone, desktop)
            val photos = File(tempDir("src"), "photos").apply { mkdirs() }
            val big = bigFile(photos)
            val size = big.length().toInt()
            val atPeer = File(incoming, "photos/big.mp4")
            val saver = MutableStateFlow(false)
            val model = BackupViewModel(phone, saver)
            model.refresh()
            model.choose(photos.path)

            // Cancelled while paused: saver going off does not start it again.
            val first = launch { model.backup(desktopFp) }
            withTimeout(60.seconds) { model.state.first { (it.progress?.bytes ?: 0UL) > 0UL } }
            saver.value = true
            eventually(what = "the backup paused") { model.state.value.takeIf { it.pausedForSaver } }
            first.cancelAndJoin()
            assertFalse(model.state.value.running)
            assertFalse(model.state.value.pausedForSaver)
            val at = model.state.value.progress
            saver.value = false
            delay(2_000)
            assertEquals(at, model.state.value.progress, "a cancelled backup is not resumed")
            assertFalse(model.state.value.running)
            assertFalse(atPeer.exists() && atPeer.length() == size.toLong())

            // Paused again, then continued by the user under battery saver; it is not paused again
            // while saver stays on.
            val second = async { model.backup(desktopFp) }
            withTimeout(60.seconds) { model.state.first { it.running && (it.progress?.bytes ?: 0UL) > 0UL } }
            saver.value = true
            eventually(what = "the second backup paused") { model.state.value.takeIf { it.pausedForSaver } }
            model.startNow()
            assertTrue(second.await())
            assertTrue(saver.value)
            assertEquals(1UL, assertNotNull(model.state.value.summary).files)
            assertTrue(atPeer.readBytes().contentEquals(big.readBytes()))
        }
    }
}
