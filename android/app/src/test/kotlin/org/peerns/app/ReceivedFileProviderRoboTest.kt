package org.peerns.app

import android.app.Application
import android.net.Uri
import android.os.ParcelFileDescriptor
import android.provider.OpenableColumns
import java.io.File
import java.io.FileNotFoundException
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config

/** The received files lent to the app that opens one: only whole ones under the profile's files/groups and files/in, read only. */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class ReceivedFileProviderRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()
    private val provider = Robolectric.buildContentProvider(
        ReceivedFileProvider::class.java,
    ).create(ReceivedFileProvider.authority(app)).get()

    private val files get() = ReceivedFileProvider.files(app)

    /** A file where the core keeps group files: `<profile>/files/groups/<gid>/<id>/<name>`. */
    private fun groupFile(name: String, bytes: ByteArray): File =
        write(File(File(File(File(files, "groups"), "1".repeat(32)), "f".repeat(32)), name), bytes)

    /** A file a contact sent, where the core keeps it once whole: `<profile>/files/in/<id>/<name>`. */
    private fun contactFile(name: String, bytes: ByteArray): File = write(File(File(File(files, "in"), "e".repeat(32)), name), bytes)

    private fun write(file: File, bytes: ByteArray) = file.apply {
        parentFile?.mkdirs()
        writeBytes(bytes)
    }

    @Test
    fun aGroupFileIsLentReadOnlyWithItsNameAndSize() {
        val bytes = ByteArray(70_000) { (it * 31).toByte() }
        val file = groupFile("beach photo.jpg", bytes)
        val uri = assertNotNull(ReceivedFileProvider.uriOf(app, file.path))
        assertEquals("content", uri.scheme)
        assertEquals("${app.packageName}.files", uri.authority)
        assertEquals(listOf("groups", "1".repeat(32), "f".repeat(32), "beach photo.jpg"), uri.pathSegments)

        val read = ParcelFileDescriptor.AutoCloseInputStream(provider.openFile(uri, "r")).use { it.readBytes() }
        assertContentEquals(bytes, read)
        provider.query(uri, null, null, null, null).use { c ->
            assertEquals(true, c.moveToFirst())
            assertEquals("beach photo.jpg", c.getString(c.getColumnIndexOrThrow(OpenableColumns.DISPLAY_NAME)))
            assertEquals(70_000L, c.getLong(c.getColumnIndexOrThrow(OpenableColumns.SIZE)))
        }
        assertEquals("image/jpeg", provider.getType(uri))
        assertFailsWith<SecurityException> { provider.openFile(uri, "w") }
        assertFailsWith<UnsupportedOperationException> { provider.delete(uri, null, null) }
        assertEquals(true, file.exists())
    }

    @Test
    fun aFileAContactSentIsLentOnceWhole() {
        val file = contactFile("minutes.pdf", "the minutes".toByteArray())
        val uri = assertNotNull(ReceivedFileProvider.uriOf(app, file.path))
        assertEquals(listOf("in", "e".repeat(32), "minutes.pdf"), uri.pathSegments)
        val read = ParcelFileDescriptor.AutoCloseInputStream(provider.openFile(uri, "r")).use { it.readBytes() }
        assertContentEquals("the minutes".toByteArray(), read)
        assertEquals("application/pdf", provider.getType(uri))
        // An unfinished transfer's part file, beside the folders of whole ones: never lent, a
        // contact's or a group's.
        val part = write(File(File(files, "in"), "${"d".repeat(32)}.part"), "half".toByteArray())
        assertNull(ReceivedFileProvider.uriOf(app, part.path))
        val authority = ReceivedFileProvider.authority(app)
        assertFailsWith<FileNotFoundException> { provider.openFile(Uri.parse("content://$authority/in/${part.name}"), "r") }
        val groupPart = write(File(File(File(files, "groups"), "1".repeat(32)), "${"d".repeat(32)}.part"), "half".toByteArray())
        assertNull(ReceivedFileProvider.uriOf(app, groupPart.path))
        assertFailsWith<FileNotFoundException> {
            provider.openFile(Uri.parse("content://$authority/groups/${"1".repeat(32)}/${groupPart.name}"), "r")
        }
    }

    @Test
    fun nothingOutsideTheReceivedFilesFolders() {
        groupFile("a.txt", "in the group".toByteArray())
        val secret = File(app.noBackupFilesDir, "${AppService.PROFILE_DIR}/peerns.db").apply {
            parentFile?.mkdirs()
            writeText("not to be lent")
        }
        assertNull(ReceivedFileProvider.uriOf(app, secret.path))
        assertNull(ReceivedFileProvider.uriOf(app, File(files, "groups").path))
        // Our own outgoing copies are not received files.
        val ours = write(File(File(files, "out"), "c".repeat(32)), "ours".toByteArray())
        assertNull(ReceivedFileProvider.uriOf(app, ours.path))
        // A path that climbs out of the folder, and one that names no file.
        val authority = ReceivedFileProvider.authority(app)
        val climbing = Uri.parse("content://$authority/groups/${"1".repeat(32)}/..%2F..%2F..%2Fpeerns.db")
        assertFailsWith<FileNotFoundException> { provider.openFile(climbing, "r") }
        assertFailsWith<FileNotFoundException> { provider.openFile(Uri.parse("content://$authority/groups/${"1".repeat(32)}"), "r") }
        assertFailsWith<FileNotFoundException> { provider.openFile(Uri.parse("content://$authority/nothing/here.txt"), "r") }
        assertFailsWith<FileNotFoundException> { provider.openFile(Uri.parse("content://$authority/out/${ours.name}"), "r") }
    }
}
