package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.test.runTest
import org.junit.Test
import org.peerns.Peerns
import org.peerns.ffi.DiscoveredPeer
import org.peerns.ffi.LocationFix
import org.peerns.testing.config
import org.peerns.testing.eventually
import org.peerns.testing.tempDir
import org.peerns.testing.withAnnAndBob

class NearbyViewModelTest {
    private fun peer(name: String, distance: Double?) = DiscoveredPeer("f-$name", "s-$name", "d-$name", name, distance)

    @Test
    fun nearestFirstUnknownLast() {
        val sorted = NearbyViewModel.sortByDistance(
            listOf(peer("far", 900.0), peer("unknown", null), peer("near", 12.4), peer("b", 100.0), peer("a", 100.0)),
        )
        assertEquals(listOf("near", "a", "b", "far", "unknown"), sorted.map { it.name })
        assertEquals("12 m", NearbyViewModel.distance(sorted[0]))
        assertEquals("1.5 km", NearbyViewModel.distance(peer("x", 1480.0)))
        assertEquals("?", NearbyViewModel.distance(sorted[4]))
    }

    @Test
    fun underBatterySaverTheListIsReloadedLessOftenWithANotice() = runTest {
        val saver = MutableStateFlow(false)
        // A node that is never started: the policy needs none of its calls.
        Peerns(config(tempDir("peerns-nearby"))).use { node ->
            val vm = NearbyViewModel(node, saver)
            assertEquals(NearbyViewModel.POLL_MS, vm.pollMs)
            assertNull(vm.notice.first())
            saver.value = true
            assertEquals(NearbyViewModel.LOW_POWER_POLL_MS, vm.pollMs)
            assertEquals(BatterySaver.NEARBY, vm.notice.first())
            saver.value = false
            assertEquals(NearbyViewModel.POLL_MS, vm.pollMs)
            assertNull(vm.notice.first())
        }
    }

    @Test
    fun peopleInStadiumModeWithTheirDistance() = runTest(timeout = 90.seconds) {
        withAnnAndBob(contacts = false) { ann, bob ->
            val vm = NearbyViewModel(ann)
            vm.refresh()
            assertTrue(vm.state.value.people.isEmpty())
            // Two phones some 20 m apart in the same stand.
            for ((node, fix) in listOf(ann to LocationFix(48.21820, 11.62470, 5.0), bob to LocationFix(48.21838, 11.62470, 5.0))) {
                node.startStadium()
                node.setLocation(fix)
            }
            vm.setOn(true)
            val seen = eventually(60.seconds) {
                vm.refresh()
                vm.state.value.people.firstOrNull { it.name == "bob" && it.distanceM != null }
            }
            assertTrue(seen.distanceM!! in 5.0..60.0, "distance ${seen.distanceM}")
            vm.setOn(false)
            assertTrue(vm.state.value.people.isEmpty())
        }
    }
}
