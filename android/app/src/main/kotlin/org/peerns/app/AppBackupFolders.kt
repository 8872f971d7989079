package org.peerns.app

import android.content.Context
import android.net.Uri
import android.provider.DocumentsContract
import java.io.File
import java.io.IOException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import org.peerns.app.model.BackupFolders

/**
 * The backup's folders as the system's folder picker gives them: document tree URIs, whose read
 * permission the app keeps across restarts (`takePersistableUriPermission` when picked), kept in
 * the app's settings ([AppSettings.backupFolders]). The core backs up paths, so a backup first copies each folder's files as
 * they are then into the app's cache ([prepare]); the copy goes once the backup ends ([release]).
 */
class AppBackupFolders(context: Context) : BackupFolders {
    private val context = context.applicationContext
    private val settings = AppSettings(this.context)

    override fun load(): List<String> = settings.backupFolders

    override fun save(folders: List<String>) {
        settings.backupFolders = folders
    }

    override suspend fun prepare(folder: String): String = withContext(Dispatchers.IO) {
        val tree = Uri.parse(folder)
        // One copy per backup, named as the folder (the core sends it under that name).
        val dest = File(File(File(context.cacheDir, "backup"), System.nanoTime().toString()), nameOf(folder))
        try {
            copyChildren(tree, DocumentsContract.getTreeDocumentId(tree), dest)
            dest.path
        } catch (e: IOException) {
            release(dest.path)
            throw IllegalArgumentException("could not read ${nameOf(folder)}: ${e.message ?: e}")
        } catch (e: SecurityException) {
            // The permission was taken back (the folder removed, or the app's access revoked).
            release(dest.path)
            throw IllegalArgumentException("${nameOf(folder)} cannot be read any more: choose it again")
        }
    }

    override fun release(path: String) {
        File(path).parentFile?.deleteRecursively()
    }

    private fun copyChildren(tree: Uri, parentId: String, dest: File) {
        dest.mkdirs()
        val columns = arrayOf(
            DocumentsContract.Document.COLUMN_DOCUMENT_ID,
            DocumentsContract.Document.COLUMN_DISPLAY_NAME,
            DocumentsContract.Document.COLUMN_MIME_TYPE,
        )
        val resolver = context.contentResolver
        resolver.query(DocumentsContract.buildChildDocumentsUriUsingTree(tree, parentId), columns, null, null, null)?.use { c ->
            while (c.moveToNext()) {
                val id = c.getString(0)
                val target = File(dest, c.getString(1).replace('/', '_'))
                if (c.getString(2) == DocumentsContract.Document.MIME_TYPE_DIR) {
                    copyChildren(tree, id, target)
                } else {
                    resolver.openInputStream(DocumentsContract.buildDocumentUriUsingTree(tree, id))?.use { i ->
                        target.outputStream().use { o -> i.copyTo(o) }
                    }
                }
            }
        } ?: throw IOException("the folder's provider answered nothing")
    }

    companion object {
        /** A folder's name as the user knows it: `primary:DCIM/Camera` → `Camera`; a path's last part. */
        fun nameOf(folder: String): String {
            val id = if (folder.startsWith("content:")) Uri.decode(folder.substringAfterLast('/')) else folder
            return id.substringAfterLast(':').trimEnd('/').substringAfterLast('/').ifEmpty { "folder" }
        }
    }
}
