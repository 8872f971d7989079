package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue
import org.junit.Test

class RemotePictureTest {
    @Test
    fun theCameraIsShownUntilTheScreenIsSharedAndAfter() {
        val picture = RemotePicture()
        assertNull(picture.shown)
        // A frame of the screen before the peer says it shares it takes nothing.
        assertFalse(picture.shows("screen"))
        assertTrue(picture.shows("video"))
        assertEquals("video", picture.shown)

        // Shared: the screen only; the camera's picture goes.
        assertEquals("video", picture.screenShared(true))
        assertTrue(picture.shows("screen"))
        assertFalse(picture.shows("video"))
        assertNull(picture.screenShared(true), "no change, nothing goes")

        // No longer: the camera again, the screen goes.
        assertEquals("screen", picture.screenShared(false))
        assertTrue(picture.shows("video"))
        assertFalse(picture.shows("screen"))
    }

    @Test
    fun aBrowsersFirstVideoTrackIsItsCamera() {
        val picture = RemotePicture()
        assertTrue(picture.shows("3f2a-random"))
        assertFalse(picture.shows("9c1b-other"))
        // Stopped: the next call's first track is taken.
        picture.clear()
        assertTrue(picture.shows("9c1b-other"))
        // A shared screen with no camera seen yet: nothing to say goes.
        picture.clear()
        assertNull(picture.screenShared(true))
    }
}
