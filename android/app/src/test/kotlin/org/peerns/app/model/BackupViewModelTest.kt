package org.peerns.app.model

import java.io.File
import java.security.SecureRandom
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

    /** Folders kept in memory, prepared as copies under [root] (as the app's are), released by deleting them. */
    private class CopyingFolders(private val root: File) : BackupFolders {
        private var kept = emptyList<String>()
        private var copies = 0
        val released = mutableListOf<String>()

        override fun load() = kept

        override fun save(folders: List<String>) {
            kept = folders
        }

        override suspend fun prepare(folder: String): String =
            File(File(root, "${copies++}"), File(folder).name).also { File(folder).copyRecursively(it) }.path

        override fun release(path: String) {
            released += path
            File(path).deleteRecursively()
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

                // Each backup reads the folders as they are then (a copy, as the app copies a
                // picked folder out of its provider) and lets the copy go once it ends.
                val kept = CopyingFolders(tempDir("prepared"))
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

                assertTrue(model.backup(desktopFp))
                val done = model.state.value
                assertFalse(done.running)
                assertEquals(null, done.preparing)
                val copy = kept.released.single()
                assertTrue(copy.endsWith("/photos") && !File(copy).exists(), copy)
                assertEquals(RpcBackupSummary(2UL, (1000 + (2 shl 20)).toULong(), 0UL, 0UL), done.summary)
                val last = assertNotNull(done.progress)
                assertEquals(2UL, last.filesTotal)
                assertTrue(File(incoming, "photos/b.mp4").readBytes().contentEquals(File(photos, "b.mp4").readBytes()))

                assertTrue(model.backup(desktopFp))
                assertEquals(2UL, model.state.value.summary?.skipped)
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
