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

/** The group files lent to the app that opens one: only those under the profile's files/groups, read only. */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class GroupFileProviderRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()
    private val provider = Robolectric.buildContentProvider(GroupFileProvider::class.java).create(GroupFileProvider.authority(app)).get()

    /** A file where the core keeps group files: `<profile>/files/groups/<gid>/<id>/<name>`. */
    private fun groupFile(name: String, bytes: ByteArray): File =
        File(File(File(GroupFileProvider.root(app), "1".repeat(32)), "f".repeat(32)), name).apply {
            parentFile?.mkdirs()
            writeBytes(bytes)
        }

    @Test
    fun aGroupFileIsLentReadOnlyWithItsNameAndSize() {
        val bytes = ByteArray(70_000) { (it * 31).toByte() }
        val file = groupFile("beach photo.jpg", bytes)
        val uri = assertNotNull(GroupFileProvider.uriOf(app, file.path))
        assertEquals("content", uri.scheme)
        assertEquals("${app.packageName}.files", uri.authority)
        assertEquals(listOf("1".repeat(32), "f".repeat(32), "beach photo.jpg"), uri.pathSegments)

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
    fun nothingOutsideTheGroupFilesFolder() {
        groupFile("a.txt", "in the group".toByteArray())
        val secret = File(app.noBackupFilesDir, "${AppService.PROFILE_DIR}/peerns.db").apply {
            parentFile?.mkdirs()
            writeText("not to be lent")
        }
        assertNull(GroupFileProvider.uriOf(app, secret.path))
        assertNull(GroupFileProvider.uriOf(app, GroupFileProvider.root(app).path))
        // A path that climbs out of the folder, and one that names no file.
        val authority = GroupFileProvider.authority(app)
        val climbing = Uri.parse("content://$authority/${"1".repeat(32)}/..%2F..%2F..%2Fpeerns.db")
        assertFailsWith<FileNotFoundException> { provider.openFile(climbing, "r") }
        assertFailsWith<FileNotFoundException> { provider.openFile(Uri.parse("content://$authority/${"1".repeat(32)}"), "r") }
        assertFailsWith<FileNotFoundException> { provider.openFile(Uri.parse("content://$authority/nothing/here.txt"), "r") }
    }
}
