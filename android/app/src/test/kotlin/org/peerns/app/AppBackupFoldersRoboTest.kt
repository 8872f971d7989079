package org.peerns.app

import android.app.Application
import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlinx.coroutines.runBlocking
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config

/**
 * The backup's folders as the app keeps them: picked tree URIs kept across visits (and app
 * starts), named as the user knows them, a prepared copy let go. Copying out of a real document
 * provider runs only on a phone.
 */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class AppBackupFoldersRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()
    private val dcim = "content://com.android.externalstorage.documents/tree/primary%3ADCIM%2FCamera"
    private val docs = "content://com.android.externalstorage.documents/tree/primary%3ADocuments"

    @Test
    fun pickedFoldersAreKeptAndNamedAsTheUserKnowsThem() {
        AppBackupFolders(app).save(listOf(dcim, docs))
        assertEquals(listOf(dcim, docs), AppBackupFolders(app).load())
        assertEquals("Camera", AppBackupFolders.nameOf(dcim))
        assertEquals("Documents", AppBackupFolders.nameOf(docs))
        assertEquals("photos", AppBackupFolders.nameOf("/sdcard/photos"))
        AppBackupFolders(app).save(emptyList())
        assertEquals(emptyList(), AppBackupFolders(app).load())
    }

    @Test
    fun aPreparedCopyGoesWithTheBackupAndAnUnreadableFolderIsSaid() {
        val copy = File(File(File(app.cacheDir, "backup"), "1"), "Camera").apply { mkdirs() }
        File(copy, "a.jpg").writeText("a")
        AppBackupFolders(app).release(copy.path)
        assertFalse(copy.parentFile!!.exists())
        // No provider answers for this tree here: said as the screen's error, not a crash.
        val e = assertFailsWith<IllegalArgumentException> { runBlocking { AppBackupFolders(app).prepare(dcim) } }
        assertEquals(true, e.message?.contains("Camera"), e.message)
    }
}
