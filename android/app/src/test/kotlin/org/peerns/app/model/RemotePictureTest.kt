package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue
import org.junit.Test

class RemotePictureTest {
    @Test
    fun theCameraIsShownUntilTheSharedScreensFirstFrameAndAfterItStops() {
        val picture = RemotePicture()
        val gone = mutableListOf<String>()
        assertNull(picture.shown)
        // A frame of the screen before the peer says it shares it takes nothing.
        assertFalse(picture.shows("screen", gone::add))
        assertTrue(picture.shows("video", gone::add))
        assertEquals("video", picture.shown)

        // Said shared: the camera stays until the screen's first frame, which takes over.
        assertNull(picture.screenShared(true))
        assertTrue(picture.shows("video", gone::add))
        assertEquals(emptyList(), gone)
        assertTrue(picture.shows("screen", gone::add))
        assertEquals(listOf("video"), gone)
        assertEquals("screen", picture.shown)
        assertFalse(picture.shows("video", gone::add))
        assertTrue(picture.shows("screen", gone::add))
        assertEquals(listOf("video"), gone, "told once")

        // No longer: the camera again, the screen goes.
        assertEquals("screen", picture.screenShared(false))
        assertTrue(picture.shows("video", gone::add))
        assertFalse(picture.shows("screen", gone::add))
        assertNull(picture.screenShared(false))
    }

    @Test
    fun aPeerSayingItSharesWithoutSendingKeepsItsCamera() {
        val picture = RemotePicture()
        assertTrue(picture.shows("video"))
        assertNull(picture.screenShared(true))
        assertTrue(picture.shows("video"))
        // It stops saying so: nothing was shown of the screen, nothing goes.
        assertNull(picture.screenShared(false))
        assertEquals("video", picture.shown)
    }

    @Test
    fun aBrowsersFirstVideoTrackIsItsCamera() {
        val picture = RemotePicture()
        assertTrue(picture.shows("3f2a-random"))
        assertFalse(picture.shows("9c1b-other"))
        // Stopped: the next call's first track is taken.
        picture.clear()
        assertTrue(picture.shows("9c1b-other"))
    }
}
