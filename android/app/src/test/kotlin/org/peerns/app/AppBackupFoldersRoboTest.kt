package org.peerns.app

import android.Manifest
import android.app.Application
import android.content.pm.ProviderInfo
import android.database.Cursor
import android.database.MatrixCursor
import android.os.CancellationSignal
import android.os.ParcelFileDescriptor
import android.provider.DocumentsContract
import android.provider.DocumentsContract.Document
import android.provider.DocumentsProvider
import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlinx.coroutines.runBlocking
import org.junit.Test
import org.junit.runner.RunWith
import org.peerns.app.model.BackupSource
import org.peerns.ffi.DocumentException
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config

/**
 * The backup's folders as the app keeps them: picked tree URIs kept across visits (and app
 * starts), named as the user knows them, and listed through a real documents provider into the
 * documents the core opens one by one.
 */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class AppBackupFoldersRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()
    private val dcim = "content://com.android.externalstorage.documents/tree/primary%3ADCIM%2FCamera"
    private val docs = "content://com.android.externalstorage.documents/tree/primary%3ADocuments"

    /** Serves the files under [root] (a static: Robolectric builds the provider). */
    class FolderProvider : DocumentsProvider() {
        override fun onCreate() = true

        override fun queryRoots(projection: Array<out String>?): Cursor = MatrixCursor(arrayOf("root_id"))

        override fun queryDocument(documentId: String, projection: Array<out String>?): Cursor =
            MatrixCursor(COLUMNS).apply { add(this, fileOf(documentId)) }

        override fun queryChildDocuments(parentDocumentId: String, projection: Array<out String>?, sortOrder: String?): Cursor =
            MatrixCursor(COLUMNS).apply {
                // Not in name order, as providers answer.
                fileOf(parentDocumentId).listFiles()!!.sortedByDescending { it.name }.forEach { add(this, it) }
            }

        override fun isChildDocument(parentDocumentId: String, documentId: String) = documentId.startsWith("$parentDocumentId/")

        override fun openDocument(documentId: String, mode: String, signal: CancellationSignal?): ParcelFileDescriptor {
            if (documentId.endsWith("revoked.jpg")) throw SecurityException("no longer allowed")
            return ParcelFileDescriptor.open(fileOf(documentId), ParcelFileDescriptor.MODE_READ_ONLY)
        }

        /** Document ids are paths from the folder's own name: `Camera`, `Camera/trip/c.jpg`. */
        private fun fileOf(id: String) = File(root, id.removePrefix("Camera").removePrefix("/"))

        private fun add(c: MatrixCursor, f: File) {
            val mime = if (f.isDirectory) Document.MIME_TYPE_DIR else "image/jpeg"
            val rel = f.relativeTo(root).path
            val flags = if (f.name.startsWith("virtual")) Document.FLAG_VIRTUAL_DOCUMENT else 0
            c.addRow(arrayOf(if (rel.isEmpty()) "Camera" else "Camera/$rel", f.name, mime, flags))
        }

        companion object {
            lateinit var root: File
            val COLUMNS =
                arrayOf(Document.COLUMN_DOCUMENT_ID, Document.COLUMN_DISPLAY_NAME, Document.COLUMN_MIME_TYPE, Document.COLUMN_FLAGS)
        }
    }

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
    fun aFolderIsListedInNameOrderAndEachDocumentOpensThroughItsProvider() {
        val authority = "org.peerns.test.documents"
        FolderProvider.root = File(app.cacheDir, "provider/Camera").apply {
            File(this, "trip").mkdirs()
            File(this, "b.jpg").writeText("bee")
            File(this, "a.jpg").writeText("ay")
            File(this, "trip/c.jpg").writeText("sea")
            File(this, "trip/revoked.jpg").writeText("gone")
            // Not the user's files: a trashed photo, and a document with no bytes of its own.
            File(this, ".trashed-1767225600-d.jpg").writeText("old")
            File(this, "virtual-sheet.jpg").writeText("")
        }
        // As the system requires of a documents provider.
        val info = ProviderInfo().apply {
            this.authority = authority
            exported = true
            grantUriPermissions = true
            readPermission = Manifest.permission.MANAGE_DOCUMENTS
            writePermission = Manifest.permission.MANAGE_DOCUMENTS
        }
        Robolectric.buildContentProvider(FolderProvider::class.java).create(info)
        val tree = DocumentsContract.buildTreeDocumentUri(authority, "Camera").toString()
        val source = runBlocking { AppBackupFolders(app).list(tree) }
        check(source is BackupSource.Documents)
        assertEquals(listOf("Camera/a.jpg", "Camera/b.jpg", "Camera/trip/c.jpg", "Camera/trip/revoked.jpg"), source.names)
        // Each opens through its provider (the descriptor's hand-over, `detachFd`, needs a
        // phone's libcore: not run here).
        val opener = source.opener as AppBackupFolders.Opener
        val read = (0..2).map { i ->
            ParcelFileDescriptor.AutoCloseInputStream(opener.open(i.toULong())).use { it.readBytes().decodeToString() }
        }
        assertEquals(listOf("ay", "bee", "sea"), read)
        // One whose permission went: said as the document's error, which the backup reports.
        val e = assertFailsWith<DocumentException.Unreadable> { opener.openDocument(3UL) }
        assertEquals(true, e.msg.contains("choose the folder again"), e.msg)
        assertFailsWith<DocumentException.Unreadable> { opener.openDocument(4UL) }
        // One gone since it was listed.
        File(FolderProvider.root, "b.jpg").delete()
        assertFailsWith<DocumentException.Unreadable> { opener.openDocument(1UL) }
    }

    @Test
    fun anUnreadableFolderIsSaid() {
        // No provider answers for this tree here: said as the screen's error, not a crash.
        val e = assertFailsWith<IllegalArgumentException> { runBlocking { AppBackupFolders(app).list(dcim) } }
        assertEquals(true, e.message?.contains("Camera"), e.message)
    }
}
