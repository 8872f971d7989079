package org.peerns.app

import android.content.Context
import android.net.Uri
import android.os.ParcelFileDescriptor
import android.provider.DocumentsContract
import java.io.File
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
        // Copies an earlier version of the app made for a backup it did not end (killed).
        File(context.cacheDir, "backup").deleteRecursively()
        val tree = Uri.parse(folder)
        val names = mutableListOf<String>()
        val uris = mutableListOf<Uri>()
        try {
            // Named below the folder's own name, as the core names a walked folder's files.
            listChildren(tree, DocumentsContract.getTreeDocumentId(tree), nameOf(folder), names, uris)
        } catch (e: SecurityException) {
            // The permission was taken back (the folder removed, or the app's access revoked).
            throw IllegalArgumentException("${nameOf(folder)} cannot be read any more: choose it again")
        } catch (e: Exception) {
            // A provider's failure (IOException, IllegalStateException, ...): said, not a crash.
            throw IllegalArgumentException("could not read ${nameOf(folder)}: ${e.message ?: e}")
        }
        BackupSource.Documents(names, Opener(uris))
    }

    /** Opens a listed document for the core, handing its descriptor over. */
    inner class Opener(private val uris: List<Uri>) : DocumentOpener {
        // A duplicate, detached: the provider's own descriptor is closed at once, which lets the
        // provider go (detaching a provider's descriptor itself keeps it until collected).
        override fun openDocument(index: ULong): Int = open(index).use { it.dup().detachFd() }

        /** Document [index] opened through its provider. */
        fun open(index: ULong): ParcelFileDescriptor {
            val uri = uris.getOrNull(index.toInt()) ?: throw DocumentException.Unreadable("no document $index")
            return try {
                context.contentResolver.openFileDescriptor(uri, "r")
            } catch (e: IOException) {
                throw DocumentException.Unreadable(e.message ?: e.toString())
            } catch (e: SecurityException) {
                throw DocumentException.Unreadable("permission revoked: choose the folder again")
            } catch (e: IllegalArgumentException) {
                // A document gone since it was listed (its provider no longer finds it in the tree).
                throw DocumentException.Unreadable(e.message ?: e.toString())
            } ?: throw DocumentException.Unreadable("its provider answered nothing")
        }
    }

    /** Adds the files below [parentId] to [names] (under [prefix]) and [uris], in name order. */
    private fun listChildren(tree: Uri, parentId: String, prefix: String, names: MutableList<String>, uris: MutableList<Uri>) {
        val columns = arrayOf(
            DocumentsContract.Document.COLUMN_DOCUMENT_ID,
            DocumentsContract.Document.COLUMN_DISPLAY_NAME,
            DocumentsContract.Document.COLUMN_MIME_TYPE,
            DocumentsContract.Document.COLUMN_FLAGS,
        )
        val children = mutableListOf<Triple<String, String, Boolean>>()
        val query = DocumentsContract.buildChildDocumentsUriUsingTree(tree, parentId)
        context.contentResolver.query(query, columns, null, null)?.use { c ->
            while (c.moveToNext()) {
                val id = c.getString(0) ?: continue
                val name = c.getString(1) ?: continue
                // Hidden ones (".trashed-…", ".pending-…", ".thumbnails") are not the user's
                // files; a virtual document has no bytes of its own to read.
                val flags = c.getColumnIndex(DocumentsContract.Document.COLUMN_FLAGS).let { if (it < 0) 0 else c.getInt(it) }
                val virtual = (flags and DocumentsContract.Document.FLAG_VIRTUAL_DOCUMENT) != 0
                if (name.startsWith(".") || virtual) continue
                children += Triple(id, name, c.getString(2) == DocumentsContract.Document.MIME_TYPE_DIR)
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
