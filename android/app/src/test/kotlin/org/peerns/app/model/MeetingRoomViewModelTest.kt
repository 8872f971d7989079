package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.launch
import kotlinx.coroutines.test.runTest
import kotlinx.coroutines.withContext
import org.junit.Test
import org.peerns.Peerns
import org.peerns.ffi.GroupEvent
import org.peerns.ffi.GroupMessage
import org.peerns.ffi.LocationFix
import org.peerns.testing.config
import org.peerns.testing.eventually
import org.peerns.testing.startedNode
import org.peerns.testing.tempDir
import org.peerns.testing.withAnnAndBob

class MeetingRoomViewModelTest {
    private fun message(id: String, text: String) = GroupMessage(id, "a".repeat(64), 1u, text, 0u)

    /** Starts stadium mode on [node] at [latitude] (same longitude for all: metres apart). */
    private fun stadium(node: Peerns, latitude: Double) {
        node.startStadium()
        node.setLocation(LocationFix(latitude, 11.62470, 5.0))
    }

    /** [room] follows [node]'s group events, as the screen does (see GroupsViewModelTest for Unconfined). */
    private fun CoroutineScope.follow(node: Peerns, room: MeetingRoomViewModel): Job = launch(Dispatchers.Unconfined) {
        node.groupEvents.collect { e ->
            room.onGroupEvent(e)
            if (room.needsRefresh(e)) room.refresh()
        }
    }

    private fun texts(room: MeetingRoomViewModel) = room.state.value.messages.map { it.text }

    @Test
    fun eventsOfTheRoomOnlyAndARoomEventSwitchesOrClears() {
        // Events alone never call the node: one that is not started will do.
        Peerns(config(tempDir("peerns-events"), "events")).use { node ->
            val vm = MeetingRoomViewModel(node)
            val r1 = "1".repeat(32)
            val r2 = "2".repeat(32)
            vm.onGroupEvent(GroupEvent.Message(r1, message("m0", "before the room")))
            assertTrue(vm.state.value.messages.isEmpty())
            // Its role may come before we know we are in it.
            vm.onGroupEvent(GroupEvent.Role(r1, true))
            val entered = GroupEvent.Room(r1)
            vm.onGroupEvent(entered)
            assertTrue(vm.needsRefresh(entered))
            assertEquals(r1, vm.state.value.room)
            assertTrue(vm.state.value.router)
            vm.onGroupEvent(GroupEvent.Message(r1, message("m1", "hi")))
            vm.onGroupEvent(GroupEvent.Message(r1, message("m1", "hi")))
            vm.onGroupEvent(GroupEvent.Message("3".repeat(32), message("m2", "another group")))
            assertEquals(listOf("hi"), texts(vm))
            assertTrue(vm.needsRefresh(GroupEvent.Backfill(r1, 3u, false)))
            assertFalse(vm.needsRefresh(GroupEvent.Backfill(r1, 3u, true)))
            assertFalse(vm.needsRefresh(GroupEvent.Backfill(r2, 3u, false)))
            // A merge: the lower room takes over, its history comes with a refresh.
            val moved = GroupEvent.Room(r2)
            vm.onGroupEvent(moved)
            assertTrue(vm.needsRefresh(moved))
            assertEquals(MeetingRoomState(room = r2), vm.state.value)
            vm.onGroupEvent(GroupEvent.Role(r2, true))
            vm.onGroupEvent(GroupEvent.Message(r2, message("m3", "in the merged room")))
            assertEquals(listOf("in the merged room"), texts(vm))
            val left = GroupEvent.Room(null)
            vm.onGroupEvent(left)
            assertFalse(vm.needsRefresh(left))
            assertEquals(MeetingRoomState(), vm.state.value)
        }
    }

    @Test
    fun joinWithoutStadiumModeSaysWhy() = runTest(timeout = 60.seconds) {
        withContext(Dispatchers.Default) {
            val ann = startedNode("ann")
            try {
                val vm = MeetingRoomViewModel(ann)
                assertNull(vm.join())
                val state = vm.state.value
                assertNotNull(state.error, "an error")
                assertTrue("stadium" in state.error!!, state.error)
                assertNull(state.room)
                assertFalse(state.joining)
                assertFalse(vm.send("anyone?"))
                assertNull(ann.meetingRoom())
            } finally {
                ann.stop()
            }
        }
    }

    @Test
    fun peopleNearbyMeetInOneRoomChatAndLeave() = runTest(timeout = 150.seconds) {
        withAnnAndBob(contacts = false) { ann, bob ->
            val annRoom = MeetingRoomViewModel(ann)
            val bobRoom = MeetingRoomViewModel(bob)
            val follow = listOf(follow(ann, annRoom), follow(bob, bobRoom))
            // Two phones some 4 m apart in the same stand; each sees the other first.
            stadium(ann, 48.21820)
            stadium(bob, 48.21824)
            val bobNearby = NearbyViewModel(bob).apply { setOn(true) }
            eventually(60.seconds, "bob to see ann nearby") {
                bobNearby.refresh()
                bobNearby.state.value.people.firstOrNull { it.name == "ann" }
            }
            assertEquals(0, bobNearby.state.value.inRoom)

            val room = assertNotNull(annRoom.join(), annRoom.state.value.error)
            assertEquals(room, annRoom.state.value.room)
            assertFalse(annRoom.state.value.joining)
            // Ann's stadium record now names the room.
            eventually(30.seconds, "ann's room in bob's nearby list") {
                bobNearby.refresh()
                bobNearby.state.value.takeIf { s -> s.inRoom == 1 && s.people.any { it.name == "ann" && it.room == room } }
            }
            assertEquals(room, bobRoom.join(), "one room")
            assertEquals(room, bobRoom.state.value.room)

            assertTrue(annRoom.send(" hello everyone "), annRoom.state.value.error)
            assertEquals(listOf("hello everyone"), texts(annRoom))
            eventually(30.seconds, "ann's message at bob") { bobRoom.state.value.messages.singleOrNull { it.text == "hello everyone" } }
            // Bob may send once he knows his place in the room's log.
            eventually(30.seconds, "bob's send") { if (bobRoom.send("hi ann")) true else null }
            eventually(30.seconds, "bob's message at ann") { annRoom.state.value.messages.singleOrNull { it.text == "hi ann" } }
            assertTrue(annRoom.refresh())
            assertEquals(listOf("hello everyone", "hi ann"), texts(annRoom))
            assertTrue(bobRoom.refresh())
            assertEquals(texts(annRoom), texts(bobRoom), "the same order")

            assertTrue(bobRoom.leave())
            assertEquals(MeetingRoomState(), bobRoom.state.value)
            assertNull(bob.meetingRoom())
            // The state stays clear once the Room(null) event has come by too.
            assertTrue(bobRoom.refresh())
            assertNull(bobRoom.state.value.room)
            assertEquals(room, annRoom.state.value.room)
            follow.forEach { it.cancel() }
        }
    }

    @Test
    fun roomsStartedApartMergeAndTheViewFollows() = runTest(timeout = 150.seconds) {
        withAnnAndBob(contacts = false) { ann, bob ->
            val annRoom = MeetingRoomViewModel(ann)
            val bobRoom = MeetingRoomViewModel(bob)
            val follow = listOf(follow(ann, annRoom), follow(bob, bobRoom))
            // Two places 2 km apart: neither sees the other's room.
            stadium(ann, 48.21820)
            stadium(bob, 48.23620)
            val ra = assertNotNull(annRoom.join(), annRoom.state.value.error)
            val rb = assertNotNull(bobRoom.join(), bobRoom.state.value.error)
            assertNotEquals(ra, rb)
            assertTrue(annRoom.send("ann was here"), annRoom.state.value.error)
            assertTrue(bobRoom.send("bob was here"), bobRoom.state.value.error)
            // Bob walks over to ann: whoever holds the higher room moves to the lower one,
            // and its view switches to that room with its history.
            bob.setLocation(LocationFix(48.21824, 11.62470, 5.0))
            val lower = minOf(ra, rb)
            eventually(60.seconds, "both views in the lower room") {
                true.takeIf { annRoom.state.value.room == lower && bobRoom.state.value.room == lower }
            }
            eventually(40.seconds, "both messages in both views") {
                true.takeIf {
                    texts(annRoom).toSet() == setOf("ann was here", "bob was here") &&
                        texts(bobRoom).toSet() == setOf("ann was here", "bob was here")
                }
            }
            assertEquals(lower, ann.meetingRoom())
            assertEquals(lower, bob.meetingRoom())
            follow.forEach { it.cancel() }
        }
    }
}
