package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.test.runTest
import kotlinx.coroutines.withContext
import org.junit.Test
import org.peerns.ffi.Trust
import org.peerns.testing.eventually
import org.peerns.testing.makeContacts
import org.peerns.testing.startedNode

class MonitorViewModelTest {
    @Test
    fun armAllowWatchAlertAndStop() = runTest(timeout = 120.seconds) {
        withContext(Dispatchers.Default) {
            val parent = startedNode("parent")
            val baby = startedNode("baby")
            try {
                makeContacts(parent, baby)
                val parentFp = parent.identity().fingerprint
                val babyFp = baby.identity().fingerprint
                val microphone = object : SoundLevels {
                    @Volatile
                    var onLevel: ((Float) -> Unit)? = null

                    override fun start(onLevel: (Float) -> Unit) {
                        this.onLevel = onLevel
                    }

                    override fun stop() {
                        onLevel = null
                    }
                }
                val monitor = MonitorViewModel(baby, microphone)
                val viewer = MonitorViewModel(parent)
                // Unconfined: each flow subscribes before launch returns, so no event sent next is missed.
                val follow = launch(Dispatchers.Unconfined) { parent.events.collect { viewer.onEvent(it) } }

                // Only a contact at Full access may be allowed to watch.
                assertFalse(monitor.allow(parentFp))
                baby.setTrust(parentFp, Trust.FULL_ACCESS)
                assertTrue(monitor.allow(parentFp))
                assertEquals(setOf(parentFp), monitor.state.value.watchers)
                assertEquals(listOf(parentFp), monitor.state.value.contacts.map { it.fingerprint })

                assertFalse(monitor.arm("sideways", null))
                assertTrue(monitor.arm("environment", -30f))
                assertEquals("environment", monitor.state.value.armed)
                assertTrue(viewer.watch(babyFp))
                val call = assertNotNull(viewer.state.value.watchCall)
                assertEquals(call, parent.activeCall()?.call)

                // The microphone reports levels to the node while armed with an alert; a loud one
                // held for 300 ms alerts.
                val levels = assertNotNull(microphone.onLevel)
                repeat(5) {
                    levels(-8.4f)
                    delay(100)
                }
                val alert = eventually { viewer.state.value.alerts.firstOrNull() }
                assertEquals(babyFp to -8, alert.fingerprint to alert.levelDbfs)

                assertTrue(viewer.stopWatching())
                assertNull(viewer.state.value.watching)
                assertTrue(monitor.disarm())
                assertNull(microphone.onLevel)
                assertTrue(monitor.disallow(parentFp))
                assertEquals(emptySet(), monitor.state.value.watchers)
                follow.cancel()
            } finally {
                parent.stop()
                baby.stop()
            }
        }
    }
}
