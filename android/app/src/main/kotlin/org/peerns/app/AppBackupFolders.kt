package org.peerns.app

import android.content.Context
import android.net.Uri
import android.os.ParcelFileDescriptor
import android.provider.DocumentsContract
import java.io.IOException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import org.peerns.app.model.BackupFolders
import org.peerns.app.model.BackupSource
import org.peerns.ffi.DocumentException
import org.peerns.ffi.DocumentOpener

/**
 * The backup's folders as the system's folder picker gives them: document tree URIs, whose read
 * permission the app keeps across restarts (`takePersistableUriPermission` when picked), kept in
 * the app's settings ([AppSettings.backupFolders]). A backup lists a folder's documents as they
 * are then ([list]) and the core opens each through its provider when its turn comes: nothing is
 * copied, so a folder larger than the free space backs up too.
 */
class AppBackupFolders(context: Context) : BackupFolders {
    private val context = context.applicationContext
    private val settings = AppSettings(this.context)

    override fun load(): List<String> = settings.backupFolders

    override fun save(folders: List<String>) {
        settings.backupFolders = folders
    }

    override suspend fun list(folder: String): BackupSource = withContext(Dispatchers.IO) {
        val tree = Uri.parse(folder)
        val names = mutableListOf<String>()
        val uris = mutableListOf<Uri>()
        try {
            // Named below the folder's own name, as the core names a walked folder's files.
            listChildren(tree, DocumentsContract.getTreeDocumentId(tree), nameOf(folder), names, uris)
        } catch (e: IOException) {
            throw IllegalArgumentException("could not read ${nameOf(folder)}: ${e.message ?: e}")
        } catch (e: SecurityException) {
            // The permission was taken back (the folder removed, or the app's access revoked).
            throw IllegalArgumentException("${nameOf(folder)} cannot be read any more: choose it again")
        }
        BackupSource.Documents(names, Opener(uris))
    }

    /** Opens a listed document for the core, handing its descriptor over. */
    inner class Opener(private val uris: List<Uri>) : DocumentOpener {
        override fun openDocument(index: ULong): Int = open(index).detachFd()

        /** Document [index] opened through its provider. */
        fun open(index: ULong): ParcelFileDescriptor {
            val uri = uris.getOrNull(index.toInt()) ?: throw DocumentException.Unreadable("no document $index")
            return try {
                context.contentResolver.openFileDescriptor(uri, "r")
            } catch (e: IOException) {
                throw DocumentException.Unreadable(e.message ?: e.toString())
            } catch (e: SecurityException) {
                throw DocumentException.Unreadable("permission revoked: choose the folder again")
            } ?: throw DocumentException.Unreadable("its provider answered nothing")
        }
    }

    /** Adds the files below [parentId] to [names] (under [prefix]) and [uris], in name order. */
    private fun listChildren(tree: Uri, parentId: String, prefix: String, names: MutableList<String>, uris: MutableList<Uri>) {
        val columns = arrayOf(
            DocumentsContract.Document.COLUMN_DOCUMENT_ID,
            DocumentsContract.Document.COLUMN_DISPLAY_NAME,
            DocumentsContract.Document.COLUMN_MIME_TYPE,
        )
        val children = mutableListOf<Triple<String, String, Boolean>>()
        // The query form documents providers answer (the one with selection strings is refused).
        val query = DocumentsContract.buildChildDocumentsUriUsingTree(tree, parentId)
        context.contentResolver.query(query, columns, null, null)?.use { c ->
            while (c.moveToNext()) {
                children += Triple(c.getString(0), c.getString(1), c.getString(2) == DocumentsContract.Document.MIME_TYPE_DIR)
            }
        } ?: throw IOException("the folder's provider answered nothing")
        for ((id, name, dir) in children.sortedBy { it.second }) {
            // A slash in a display name would read as one more folder.
            val path = "$prefix/${name.replace('/', '_')}"
            if (dir) {
                listChildren(tree, id, path, names, uris)
            } else {
                names += path
                uris += DocumentsContract.buildDocumentUriUsingTree(tree, id)
            }
        }
    }

    companion object {
        /** A folder's name as the user knows it: `primary:DCIM/Camera` → `Camera`; a path's last part. */
        fun nameOf(folder: String): String {
            val id = if (folder.startsWith("content:")) Uri.decode(folder.substringAfterLast('/')) else folder
            return id.substringAfterLast(':').trimEnd('/').substringAfterLast('/').ifEmpty { "folder" }
        }
    }
}
