package org.peerns.media

import kotlin.math.abs

/**
 * How far a phone's camera picture must be turned to stand upright. Pure Kotlin.
 *
 * A camera gives its frames as its sensor is mounted (`SENSOR_ORIENTATION`: 90 on most back
 * cameras, 270 on most front ones), whatever way the phone is held; the hardware encoder sends
 * them so. Turning them first would cost a GPU pass per frame, so the sender says how far they
 * must be turned (the call's media state) and the receiver turns the picture as it shows it.
 */
object VideoRotation {
    /**
     * The phone's turn, clockwise from its natural orientation, to the nearest quarter: 0, 90,
     * 180 or 270, from an `OrientationEventListener` reading in degrees; null while it cannot
     * tell (lying flat: a negative reading).
     */
    fun deviceDegrees(orientation: Int): Int? = if (orientation < 0) null else (orientation + 45) / 90 % 4 * 90

    /**
     * The phone's turn after a reading of [orientation] degrees when it was [current]: a new
     * quarter only once the reading is within [SETTLE] degrees of it, so a phone held near 45°
     * does not flip back and forth (each flip restarts the receiver's decoder); null while it
     * cannot tell.
     */
    fun deviceDegrees(orientation: Int, current: Int): Int? {
        val quarter = deviceDegrees(orientation) ?: return null
        if (quarter == current) return current
        val off = abs(((orientation - quarter) % 360 + 540) % 360 - 180)
        return if (off <= SETTLE) quarter else current
    }

    /** How near a new quarter a reading must be to count as turned to it, degrees. */
    const val SETTLE = 30

    /**
     * The clockwise turn that makes a frame of a camera mounted at [sensorOrientation] upright
     * with the phone turned [deviceDegrees]: the back camera turns with the phone, the front one
     * (facing the other way) against it. Camera2's rule for a JPEG's orientation.
     */
    fun of(sensorOrientation: Int, deviceDegrees: Int, front: Boolean): Int {
        val device = if (front) -deviceDegrees else deviceDegrees
        return ((sensorOrientation + device) % 360 + 360) % 360
    }
}
