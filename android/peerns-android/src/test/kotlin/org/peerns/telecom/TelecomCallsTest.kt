package org.peerns.telecom

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue
import org.junit.Test

/** The Telecom mapping of the core's call states and end reasons, and the call-ID bookkeeping. */
class TelecomCallsTest {
    @Test
    fun endReasonsMapToDisconnectCauses() {
        assertEquals(EndCause.LOCAL, endCause("hangup", outgoing = false))
        assertEquals(EndCause.REMOTE, endCause("peer_hangup", outgoing = true))
        assertEquals(EndCause.REJECTED, endCause("declined", outgoing = false))
        assertEquals(EndCause.REJECTED, endCause("declined", outgoing = true))
        assertEquals(EndCause.BUSY, endCause("busy", outgoing = true))
        assertEquals(EndCause.MISSED, endCause("no_answer", outgoing = false))
        assertEquals(EndCause.MISSED, endCause("no_answer", outgoing = true))
        // The caller gave up: missed here; we gave up on ours: ours.
        assertEquals(EndCause.MISSED, endCause("cancelled", outgoing = false))
        assertEquals(EndCause.LOCAL, endCause("cancelled", outgoing = true))
        assertEquals(EndCause.ERROR, endCause("unreachable", outgoing = true))
        assertEquals(EndCause.ERROR, endCause("lost", outgoing = false))
        assertEquals(EndCause.OTHER, endCause("replaced", outgoing = true))
        assertEquals(EndCause.OTHER, endCause(null, outgoing = false))
    }

    @Test
    fun callStatesMapToConnectionSteps() {
        assertEquals(ConnectionStep.RINGING, connectionStep("ringing"))
        assertEquals(ConnectionStep.DIALING, connectionStep("dialing"))
        assertEquals(ConnectionStep.ACTIVE, connectionStep("connected"))
        assertEquals(ConnectionStep.ENDED, connectionStep("ended"))
        assertEquals(ConnectionStep.NONE, connectionStep("something new"))
    }

    @Test
    fun theRegistryKeepsReportedCallsAndTheirConnections() {
        val calls = CallRegistry<String>()
        assertTrue(calls.report("a"))
        assertFalse(calls.report("a"), "reported once")
        assertTrue(calls.pending("a"))
        assertFalse(calls.pending("b"), "never reported")
        calls.put("a", "connection a")
        assertFalse(calls.pending("a"))
        assertEquals("connection a", calls["a"])
        assertEquals(setOf("a"), calls.calls())
        assertEquals("connection a", calls.remove("a"))
        assertNull(calls["a"])
        assertNull(calls.remove("a"))
        assertTrue(calls.report("a"), "an ended call is forgotten")
        assertEquals(emptySet(), calls.calls())
    }

    @Test
    fun aStepReportedBeforeTheConnectionExistsWaitsForIt() {
        val calls = CallRegistry<String>()
        // Never reported: nothing kept.
        assertNull(calls.stepFor("x", ConnectionStep.ACTIVE))
        assertNull(calls.put("x", "connection x"))
        // Answered from the notification while Telecom still creates the connection: it takes
        // the last step when it comes.
        calls.report("a")
        assertNull(calls.stepFor("a", ConnectionStep.RINGING))
        assertNull(calls.stepFor("a", ConnectionStep.ACTIVE))
        assertEquals(ConnectionStep.ACTIVE, calls.put("a", "connection a"))
        assertEquals("connection a", calls.stepFor("a", ConnectionStep.ENDED))
        // An ended call forgets what it kept.
        calls.report("b")
        calls.stepFor("b", ConnectionStep.ACTIVE)
        calls.remove("b")
        calls.report("b")
        assertNull(calls.put("b", "connection b"))
    }
}
