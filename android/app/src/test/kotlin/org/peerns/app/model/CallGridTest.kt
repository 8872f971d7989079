package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import org.junit.Test
import org.peerns.ffi.CallKinds
import org.peerns.ffi.CallMediaState
import org.peerns.ffi.CallParticipant

class CallGridTest {
    private val av = CallKinds(audio = true, video = true, screen = false)
    private val audioOnly = CallKinds(audio = true, video = false, screen = false)
    private val on = CallMediaState(muted = false, cameraOff = false, screen = false, backCamera = false)
    private val off = on.copy(cameraOff = true)

    private fun video(vararg fps: String) = fps.map { CallParticipant(it, av, on, true) }

    @Test
    fun whoSendsAPicture() {
        assertTrue(CallGrid.sendsPicture(CallParticipant("a", av, on, false)))
        assertFalse(CallGrid.sendsPicture(CallParticipant("a", av, off, true)))
        assertFalse(CallGrid.sendsPicture(CallParticipant("a", audioOnly, on, true)))
        // A shared screen is a picture, camera or not.
        assertTrue(CallGrid.sendsPicture(CallParticipant("a", audioOnly, off.copy(screen = true), true)))
    }

    @Test
    fun everyoneElseWithVideoInRosterOrderUpToTheLimit() {
        val roster = video("me", "a", "b") + CallParticipant("c", audioOnly, on, true) + video("d")
        assertEquals(listOf("a", "b", "d"), CallGrid.next(emptyList(), roster, "me", emptyList(), emptyList()))
        val many = video(*(1..9).map { "p$it" }.toTypedArray())
        assertEquals((1..6).map { "p$it" }, CallGrid.next(emptyList(), many, "me", emptyList(), emptyList()))
        assertEquals(listOf("p1", "p2"), CallGrid.next(emptyList(), many, "me", emptyList(), emptyList(), max = 2))
    }

    @Test
    fun picturesKeepTheirPlaceAndANewcomerTakesAFreeOne() {
        val roster = video("a", "b", "c")
        val grid = listOf("c", "a", "b")
        // Speaking changes no place while there is room for everyone.
        assertEquals(grid, CallGrid.next(grid, roster, "me", listOf("b"), listOf("b")))
        // a turns the camera off: its place is free; d joins with video and takes it.
        val aOff = listOf(CallParticipant("a", av, off, true)) + video("b", "c", "d")
        assertEquals(listOf("c", "d", "b"), CallGrid.next(grid, aOff, "me", emptyList(), emptyList()))
        // Nobody to take it: the others close up.
        assertEquals(listOf("c", "b"), CallGrid.next(grid, aOff.dropLast(1), "me", emptyList(), emptyList()))
        // a leaves the roster altogether: the same.
        assertEquals(listOf("c", "b"), CallGrid.next(grid, video("b", "c"), "me", emptyList(), emptyList()))
    }

    @Test
    fun whenFullASpeakerTakesThePlaceOfWhoeverHasBeenQuietLongest() {
        val roster = video("a", "b", "c", "d")
        val grid = CallGrid.next(emptyList(), roster, "me", emptyList(), emptyList(), max = 3)
        assertEquals(listOf("a", "b", "c"), grid)
        // d waits while it is quiet, even if it spoke once.
        assertEquals(grid, CallGrid.next(grid, roster, "me", emptyList(), listOf("d"), max = 3))
        // b spoke a while ago, a and c never: d speaking takes the place of c (never spoke, last place).
        val recent = CallGrid.spoke(listOf("b"), listOf("d"))
        assertEquals(listOf("d", "b"), recent)
        val withD = CallGrid.next(grid, roster, "me", listOf("d"), recent, max = 3)
        assertEquals(listOf("a", "b", "d"), withD)
        // Then c speaks: a has never spoken, so a goes, not b (who spoke) nor d.
        val next = CallGrid.next(withD, roster, "me", listOf("c"), CallGrid.spoke(recent, listOf("c")), max = 3)
        assertEquals(listOf("c", "b", "d"), next)
        // Everyone shown speaks: a speaker who is not shown waits.
        assertEquals(
            listOf("c", "b", "d"),
            CallGrid.next(next, roster, "me", listOf("c", "b", "d", "a"), listOf("c", "b", "d", "a"), max = 3),
        )
    }

    @Test
    fun newcomersBySpeakingThenRecencyThenRoster() {
        val roster = video("a", "b", "c", "d")
        assertEquals(
            listOf("c", "d", "a"),
            CallGrid.next(emptyList(), roster, "me", listOf("c"), listOf("c", "d"), max = 3),
        )
    }

    @Test
    fun recentSpeakersMostRecentFirst() {
        assertEquals(listOf("a"), CallGrid.spoke(emptyList(), listOf("a")))
        assertEquals(listOf("b", "c", "a"), CallGrid.spoke(listOf("a", "b"), listOf("b", "c")))
        assertEquals(listOf("a", "b"), CallGrid.spoke(listOf("a", "b"), emptyList()))
    }
}
