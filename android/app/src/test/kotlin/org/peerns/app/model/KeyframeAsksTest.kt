package org.peerns.app.model

import kotlin.test.assertFalse
import kotlin.test.assertTrue
import org.junit.Test

class KeyframeAsksTest {
    @Test
    fun onceASecondPerPicture() {
        val asks = KeyframeAsks()
        val t0 = 5_000_000_000L
        assertTrue(asks.mayAsk("a/video", t0))
        assertFalse(asks.mayAsk("a/video", t0 + 999_000_000))
        // Another picture has its own second.
        assertTrue(asks.mayAsk("a/screen", t0 + 10))
        assertTrue(asks.mayAsk("a/video", t0 + 1_000_000_000))
        assertFalse(asks.mayAsk("a/video", t0 + 1_500_000_000))
        // The media stopped: everyone may ask again at once.
        asks.clear()
        assertTrue(asks.mayAsk("a/video", t0 + 1_500_000_000))
    }
}
