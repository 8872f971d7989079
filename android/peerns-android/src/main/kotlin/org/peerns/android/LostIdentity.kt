package org.peerns.android

import java.io.File
import java.io.IOException
import java.text.SimpleDateFormat
import java.util.Date
import java.util.Locale
import java.util.TimeZone

/**
 * Moves a profile whose identity can no longer be unlocked out of the way, so that the next start
 * makes a new identity: [profileDir] is renamed to `<name>.lost-<UTC time>` beside it and each
 * of [keyFiles] that exists (the sealed wrapping key) moves into it. Nothing is deleted: should
 * the key come back (a restored keystore), the old profile can be moved back by hand.
 * Returns the folder the old profile is now in.
 */
fun moveProfileAside(profileDir: File, keyFiles: List<File>, now: Date = Date()): File {
    val stamp = SimpleDateFormat("yyyyMMdd-HHmmss", Locale.ROOT)
        .apply { timeZone = TimeZone.getTimeZone("UTC") }
        .format(now)
    var aside = File(profileDir.parentFile, "${profileDir.name}.lost-$stamp")
    var n = 1
    while (aside.exists()) aside = File(profileDir.parentFile, "${profileDir.name}.lost-$stamp-${n++}")
    if (profileDir.exists()) {
        if (!profileDir.renameTo(aside)) throw IOException("cannot move $profileDir to $aside")
    } else if (!aside.mkdirs()) {
        throw IOException("cannot create $aside")
    }
    for (file in keyFiles.filter(File::exists)) {
        val target = File(aside, file.name)
        if (!file.renameTo(target)) throw IOException("cannot move $file to $target")
    }
    return aside
}
