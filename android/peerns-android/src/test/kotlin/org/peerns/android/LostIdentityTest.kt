package org.peerns.android

import java.io.File
import java.nio.file.Files
import java.util.Date
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue
import org.junit.Test

class LostIdentityTest {
    @Test
    fun theOldProfileAndItsKeyMoveAsideIntact() {
        val base = Files.createTempDirectory("lost").toFile()
        val profile = File(base, "profile").apply { mkdirs() }
        File(profile, "peerns.db").writeText("database")
        val key = File(base, "peerns-identity-key.sealed").apply { writeText("sealed") }
        val absent = File(base, "other.key")
        val now = Date(1_700_000_000_000)

        val aside = moveProfileAside(profile, listOf(key, absent), now)
        assertEquals("profile.lost-20231114-221320", aside.name)
        assertFalse(profile.exists())
        assertFalse(key.exists())
        assertEquals("database", File(aside, "peerns.db").readText())
        assertEquals("sealed", File(aside, "peerns-identity-key.sealed").readText())

        // The next loss in the same second gets its own folder; the first stays.
        profile.mkdirs()
        val again = moveProfileAside(profile, listOf(key), now)
        assertNotEquals(aside, again)
        assertTrue(aside.isDirectory && again.isDirectory)
    }
}
