package org.peerns.app

import android.content.ContentProvider
import android.content.ContentValues
import android.content.Context
import android.database.Cursor
import android.database.MatrixCursor
import android.net.Uri
import android.os.ParcelFileDescriptor
import android.provider.OpenableColumns
import java.io.File
import java.io.FileNotFoundException
import java.net.URLConnection

/**
 * Lends the files this phone received to the app the user opens one with (androidx's
 * FileProvider, framework only): `content://<package>.files/<folder>/<rest>` is the file
 * `<profile>/files/<folder>/<rest>` where the core keeps it, for the two folders of received
 * files ([FOLDERS]): `groups/<gid>/<id>/<name>` (group files) and `in/<id>/<name>` (files a
 * contact sent). Read only, not exported: the opening intent grants the one URI
 * (`FLAG_GRANT_READ_URI_PERMISSION`). Anything outside those folders (the database, our
 * outgoing copies, unfinished `.part` files, which the core keeps beside the folders of finished
 * ones) is refused.
 */
class ReceivedFileProvider : ContentProvider() {
    override fun onCreate() = true

    private fun fileOf(uri: Uri): File {
        val context = context ?: throw FileNotFoundException("no context")
        val folder = uri.pathSegments.firstOrNull()?.takeIf { it in FOLDERS } ?: throw FileNotFoundException("no received file $uri")
        val root = File(files(context), folder).canonicalFile
        val file = File(root, uri.pathSegments.drop(1).joinToString(File.separator)).canonicalFile
        if (!inside(root, file) || !file.isFile) throw FileNotFoundException("no received file $uri")
        return file
    }

    override fun openFile(uri: Uri, mode: String): ParcelFileDescriptor {
        if (mode != "r") throw SecurityException("received files are read only")
        return ParcelFileDescriptor.open(fileOf(uri), ParcelFileDescriptor.MODE_READ_ONLY)
    }

    /** The name and size, as a receiving app asks for them ([OpenableColumns]). */
    override fun query(
        uri: Uri,
        projection: Array<out String>?,
        selection: String?,
        selectionArgs: Array<out String>?,
        sortOrder: String?,
    ): Cursor {
        val file = fileOf(uri)
        val columns = projection?.filter { it == OpenableColumns.DISPLAY_NAME || it == OpenableColumns.SIZE }?.toTypedArray()
            ?: arrayOf(OpenableColumns.DISPLAY_NAME, OpenableColumns.SIZE)
        return MatrixCursor(columns, 1).apply {
            addRow(columns.map { if (it == OpenableColumns.DISPLAY_NAME) file.name else file.length() })
        }
    }

    override fun getType(uri: Uri): String = uri.lastPathSegment?.let(URLConnection::guessContentTypeFromName) ?: "application/octet-stream"

    override fun insert(uri: Uri, values: ContentValues?): Uri? = throw UnsupportedOperationException("read only")

    override fun update(uri: Uri, values: ContentValues?, selection: String?, selectionArgs: Array<out String>?): Int =
        throw UnsupportedOperationException("read only")

    override fun delete(uri: Uri, selection: String?, selectionArgs: Array<out String>?): Int =
        throw UnsupportedOperationException("read only")

    companion object {
        /** The folders of received files under `<profile>/files`: group files, and files from contacts. */
        val FOLDERS = listOf("groups", "in")

        /** The provider's authority, as the manifest declares it (`${applicationId}.files`). */
        fun authority(context: Context) = "${context.packageName}.files"

        /** Where the core keeps files: `<profile>/files`. */
        fun files(context: Context) = File(File(context.noBackupFilesDir, AppService.PROFILE_DIR), "files")

        /**
         * A whole received file, at its exact depth: `groups/<gid>/<id>/<name>` or
         * `in/<id>/<name>`. Unfinished transfers' `.part` files lie one level up
         * (`groups/<gid>/<id>.part`, `in/<id>.part`) and are never lent.
         */
        private fun inside(root: File, file: File): Boolean {
            if (!file.path.startsWith(root.path + File.separator)) return false
            val depth = if (root.name == "groups") 3 else 2
            return generateSequence(file) { it.parentFile }.drop(depth).firstOrNull() == root
        }

        /** The content URI of the received file at [path], or null if it is not one (outside the folders). */
        fun uriOf(context: Context, path: String): Uri? {
            val file = File(path).canonicalFile
            val root = FOLDERS.map { File(files(context), it).canonicalFile }.firstOrNull { inside(it, file) } ?: return null
            val builder = Uri.Builder().scheme("content").authority(authority(context)).appendPath(root.name)
            file.relativeTo(root).invariantSeparatorsPath.split('/').forEach { builder.appendPath(it) }
            return builder.build()
        }
    }
}
