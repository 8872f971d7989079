package org.peerns.media

import kotlin.test.assertEquals
import kotlin.test.assertNull
import org.junit.Test

/** How far a camera picture is turned to stand upright, as Camera2 reckons a JPEG's orientation. */
class VideoRotationTest {
    @Test
    fun thePhonesTurnIsTheNearestQuarter() {
        assertEquals(listOf(0, 0, 90, 90, 180, 270, 0), listOf(0, 44, 46, 134, 200, 300, 350).map { VideoRotation.deviceDegrees(it) })
        assertNull(VideoRotation.deviceDegrees(-1), "flat: unknown")
    }

    @Test
    fun aPhoneHeldNearTheMiddleDoesNotFlipBackAndForth() {
        // Upright, tilted to 50° or 40°: still upright; at 65° it has turned.
        assertEquals(0, VideoRotation.deviceDegrees(50, current = 0))
        assertEquals(0, VideoRotation.deviceDegrees(40, current = 0))
        assertEquals(90, VideoRotation.deviceDegrees(65, current = 0))
        // Back from 90: at 40° still 90, at 20° upright again; across 0/360 too.
        assertEquals(90, VideoRotation.deviceDegrees(40, current = 90))
        assertEquals(0, VideoRotation.deviceDegrees(20, current = 90))
        assertEquals(0, VideoRotation.deviceDegrees(350, current = 270))
        assertEquals(270, VideoRotation.deviceDegrees(290, current = 0))
        assertEquals(0, VideoRotation.deviceDegrees(310, current = 0))
        assertNull(VideoRotation.deviceDegrees(-1, current = 90))
    }

    @Test
    fun aBackCameraTurnsWithThePhoneAFrontOneAgainstIt() {
        // Held upright (portrait), the usual sensors need a quarter turn each way.
        assertEquals(90, VideoRotation.of(sensorOrientation = 90, deviceDegrees = 0, front = false))
        assertEquals(270, VideoRotation.of(sensorOrientation = 270, deviceDegrees = 0, front = true))
        // Landscape, left side up (90) or right side up (270): the sensor's frames need a half
        // turn one way and none the other.
        assertEquals(180, VideoRotation.of(sensorOrientation = 90, deviceDegrees = 90, front = false))
        assertEquals(180, VideoRotation.of(sensorOrientation = 270, deviceDegrees = 90, front = true))
        assertEquals(0, VideoRotation.of(sensorOrientation = 90, deviceDegrees = 270, front = false))
        assertEquals(0, VideoRotation.of(sensorOrientation = 270, deviceDegrees = 270, front = true))
        // A sensor mounted the natural way (a tablet's) needs no turn held naturally.
        assertEquals(0, VideoRotation.of(sensorOrientation = 0, deviceDegrees = 0, front = false))
    }
}
