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
 * Lends the group files this phone holds to the app the user opens one with (androidx's
 * FileProvider, framework only): `content://<package>.files/<gid>/<id>/<name>` is the file
 * `<profile>/files/groups/<gid>/<id>/<name>` where the core keeps it. Read only, not exported:
 * the opening intent grants the one URI (`FLAG_GRANT_READ_URI_PERMISSION`). Anything outside
 * that folder is refused.
 */
class GroupFileProvider : ContentProvider() {
    override fun onCreate() = true

    private fun fileOf(uri: Uri): File {
        val root = root(context ?: throw FileNotFoundException("no context")).canonicalFile
        val file = File(root, uri.pathSegments.joinToString(File.separator)).canonicalFile
        if (!file.path.startsWith(root.path + File.separator) || !file.isFile) throw FileNotFoundException("no group file $uri")
        return file
    }

    override fun openFile(uri: Uri, mode: String): ParcelFileDescriptor {
        if (mode != "r") throw SecurityException("group files are read only")
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
        /** The provider's authority, as the manifest declares it (`${applicationId}.files`). */
        fun authority(context: Context) = "${context.packageName}.files"

        /** Where the core keeps group files: `<profile>/files/groups`. */
        fun root(context: Context) = File(File(File(context.noBackupFilesDir, AppService.PROFILE_DIR), "files"), "groups")

        /** The content URI of the group file at [path], or null if it is not one (outside the folder). */
        fun uriOf(context: Context, path: String): Uri? {
            val root = root(context).canonicalFile
            val file = File(path).canonicalFile
            if (!file.path.startsWith(root.path + File.separator)) return null
            val builder = Uri.Builder().scheme("content").authority(authority(context))
            file.relativeTo(root).invariantSeparatorsPath.split('/').forEach { builder.appendPath(it) }
            return builder.build()
        }
    }
}
