package org.peerns.app.model

import java.io.File
import java.util.Collections
import kotlin.random.Random
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
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
import org.peerns.ffi.GroupFileRef
import org.peerns.ffi.GroupFileTransfer
import org.peerns.ffi.GroupMembership
import org.peerns.ffi.GroupMessage
import org.peerns.ffi.LocationFix
import org.peerns.ffi.PeernsException
import org.peerns.testing.config
import org.peerns.testing.eventually
import org.peerns.testing.startedNode
import org.peerns.testing.tempDir
import org.peerns.testing.withAnnAndBob

/** Files in a group's chat: shared by one member, a file item at the other that ends done with the same bytes. */
class GroupChatFilesTest {
    /** [chat] follows [node]'s group events as the screen does (see GroupsViewModelTest for Unconfined); [seen] gets each one. */
    private fun CoroutineScope.follow(node: Peerns, chat: GroupChatViewModel, seen: MutableList<GroupEvent>? = null): Job =
        launch(Dispatchers.Unconfined) {
            node.groupEvents.collect { e ->
                seen?.add(e)
                chat.onGroupEvent(e)
                chat.fileToLoad(e)?.let { chat.loadFile(it) }
                if (chat.needsRefresh(e)) chat.refresh()
            }
        }

    private fun fileItems(chat: GroupChatViewModel) = chat.state.value.items.filterIsInstance<GroupChatItem.File>()

    @Test
    fun aSharedFileArrivesAtTheOtherMemberAsAFileItemWithTheSameBytes() = runTest(timeout = 150.seconds) {
        withAnnAndBob(contacts = false) { ann, bob ->
            val annFp = ann.identity().fingerprint
            val bobFp = bob.identity().fingerprint
            val annGroups = GroupsViewModel(ann)
            val gid = assertNotNull(annGroups.create("Photos"))
            eventually { ann.groups().single().takeIf { it.router } }
            assertTrue(annGroups.invite(gid, bobFp))
            assertEquals(gid, GroupsViewModel(bob).join(assertNotNull(annGroups.state.value.inviteLink)))

            val annChat = GroupChatViewModel(ann, gid)
            val bobChat = GroupChatViewModel(bob, gid)
            val bobEvents = Collections.synchronizedList(mutableListOf<GroupEvent>())
            val follow = listOf(follow(ann, annChat), follow(bob, bobChat, bobEvents))
            assertTrue(annChat.refresh())
            assertTrue(bobChat.refresh())
            assertTrue(annChat.state.value.canShareFiles)
            assertTrue(bobChat.state.value.canShareFiles)
            assertFalse(annChat.state.value.room)
            eventually(30.seconds, "bob a member at ann") { annChat.state.value.members.takeIf { m -> m.any { it.fingerprint == bobFp } } }
            // Bob's side of the log is there once he can write into it.
            eventually(30.seconds, "bob's first message") { if (bobChat.send("ready")) true else null }

            // Five chunks of 60 KiB and a bit: the last one short.
            val bytes = Random(18).nextBytes(5 * 60 * 1024 + 1234)
            val picked = File(tempDir("picked"), "beach.jpg").apply { writeBytes(bytes) }
            assertTrue(annChat.sendFile(picked.path), annChat.state.value.error)
            val ours = fileItems(annChat).single()
            assertEquals("", ours.message.text)
            assertEquals(annFp, ours.message.author)
            assertEquals("beach.jpg", ours.file.name)
            assertEquals(bytes.size.toULong(), ours.file.size)
            assertEquals("image/jpeg", ours.file.mime)
            // Ours is done at once: the core keeps a copy in the profile.
            assertTrue(ours.status.done)
            val ourPath = assertNotNull(ours.status.path)
            assertTrue(ourPath != picked.path)
            assertContentEquals(bytes, File(ourPath).readBytes())
            assertEquals("📎 beach.jpg · 301 KB", describeGroupFile(ours.file, ours.status))
            // The same message came back as an event: listed once.
            eventually { annChat.state.value.messages.takeIf { m -> m.count { it.id == ours.message.id } == 1 && m.size == 2 } }

            // Bob's chat gets the message, then the bytes, from the events alone.
            val theirs = eventually(60.seconds, "the file done at bob") { fileItems(bobChat).singleOrNull()?.takeIf { it.status.done } }
            assertEquals(ours.message.id, theirs.message.id)
            assertEquals(ours.file, theirs.file)
            val theirPath = assertNotNull(theirs.status.path)
            assertContentEquals(bytes, File(theirPath).readBytes())
            assertEquals("📎 beach.jpg · 301 KB", describeGroupFile(theirs.file, theirs.status))
            // The core told its progress (at least once: the last batch) before it was done.
            val done = eventually(what = "FileDone at bob") {
                synchronized(bobEvents) { bobEvents.filterIsInstance<GroupEvent.FileDone>().singleOrNull { it.group == gid } }
            }
            assertEquals(ours.file.id, done.file)
            assertEquals(theirPath, done.path)
            val before = synchronized(bobEvents) { bobEvents.takeWhile { it !== done } }
            val progress = before.filterIsInstance<GroupEvent.FileProgress>().filter { it.group == gid && it.file == ours.file.id }
            assertTrue(progress.isNotEmpty(), "FileProgress at bob")
            assertEquals(bytes.size.toULong(), progress.last().size)
            assertEquals(progress.last().size, progress.last().received)
            // The groups list is not reloaded for file events.
            assertFalse(GroupsViewModel(bob).concerns(done))
            assertFalse(GroupsViewModel(bob).concerns(progress.last()))

            // The screen opened again reads the same from the node (groupFile).
            val reopened = GroupChatViewModel(bob, gid)
            assertTrue(reopened.refresh())
            val again = fileItems(reopened).single()
            assertEquals(GroupFileStatus(GroupFileTransfer.DONE, bytes.size.toULong(), theirPath), again.status)
            assertEquals(listOf("ready"), reopened.state.value.items.filterIsInstance<GroupChatItem.Message>().map { it.message.text })
            follow.forEach { it.cancel() }

            // A file that is not there cannot be shared; the chat says why.
            assertFalse(bobChat.sendFile(File(tempDir("none"), "missing.txt").path))
            assertNotNull(bobChat.state.value.error)
        }
    }

    @Test
    fun progressAndDoneFromEventsOfTheGroupOnly() {
        // Events alone never call the node: one that is not started will do.
        Peerns(config(tempDir("peerns-file-events"), "events")).use { node ->
            val gid = "1".repeat(32)
            val other = "2".repeat(32)
            val vm = GroupChatViewModel(node, gid)
            val ref = GroupFileRef("f".repeat(32), "notes.pdf", 1000u, "application/pdf")
            val message = GroupMessage("m1", "a".repeat(64), 1u, "", 0u, ref)
            val text = GroupMessage("m2", "a".repeat(64), 2u, "hello", 1u)

            assertNull(vm.fileToLoad(GroupEvent.Message(other, message)))
            assertNull(vm.fileToLoad(GroupEvent.Message(gid, text)))
            assertEquals(ref.id, vm.fileToLoad(GroupEvent.Message(gid, message)))
            vm.onGroupEvent(GroupEvent.Message(gid, message))
            vm.onGroupEvent(GroupEvent.Message(gid, text))
            val waiting = assertIs<GroupChatItem.File>(vm.state.value.items.first())
            assertEquals(GroupFileStatus.WAITING, waiting.status)
            assertEquals("📎 notes.pdf · 1000 B · waiting for a member who has it", describeGroupFile(ref, waiting.status))
            assertIs<GroupChatItem.Message>(vm.state.value.items.last())

            vm.onGroupEvent(GroupEvent.FileProgress(other, ref.id, 900u, 1000u))
            assertEquals(GroupFileStatus.WAITING, vm.state.value.files[ref.id])
            vm.onGroupEvent(GroupEvent.FileProgress(gid, ref.id, 400u, 1000u))
            assertEquals("📎 notes.pdf · 1000 B · receiving 40 %", describeGroupFile(ref, vm.state.value.files.getValue(ref.id)))
            // Events out of order never move it back.
            vm.onGroupEvent(GroupEvent.FileProgress(gid, ref.id, 200u, 1000u))
            assertEquals(400uL, vm.state.value.files.getValue(ref.id).received)
            vm.onGroupEvent(GroupEvent.FileDone(gid, ref.id, "/files/notes.pdf"))
            assertEquals(GroupFileStatus(GroupFileTransfer.DONE, 1000u, "/files/notes.pdf"), vm.state.value.files[ref.id])
            vm.onGroupEvent(GroupEvent.FileProgress(gid, ref.id, 600u, 1000u))
            assertTrue(vm.state.value.files.getValue(ref.id).done)
            // The message again (ours come from send and as an event): listed once, still done.
            vm.onGroupEvent(GroupEvent.Message(gid, message))
            assertEquals(2, vm.state.value.items.size)
            assertTrue(assertIs<GroupChatItem.File>(vm.state.value.items.first()).status.done)

            // Given up: no holder's bytes matched the signed hash.
            val bad = GroupFileRef("e".repeat(32), "bad.bin", 3uL * 1024uL * 1024uL, "application/octet-stream")
            vm.onGroupEvent(GroupEvent.Message(gid, GroupMessage("m3", "b".repeat(64), 1u, "", 2u, bad)))
            vm.onGroupEvent(GroupEvent.FileDone(gid, bad.id, null))
            val refused = vm.state.value.files.getValue(bad.id)
            assertEquals(GroupFileTransfer.REFUSED, refused.state)
            assertFalse(refused.done)
            assertEquals("📎 bad.bin · 3.0 MB · could not be verified", describeGroupFile(bad, refused))
            assertEquals(GroupMembership.PENDING, vm.state.value.membership)
            assertTrue(vm.state.value.canShareFiles)
        }
    }

    @Test
    fun sizesAndPercents() {
        assertEquals("0 B", fileSize(0u))
        assertEquals("1023 B", fileSize(1023u))
        assertEquals("1 KB", fileSize(1024u))
        assertEquals("1.5 MB", fileSize(3uL * 512uL * 1024uL))
        assertEquals("2.0 GB", fileSize(2uL * 1024uL * 1024uL * 1024uL))
        assertEquals(0, percent(0u, 10u))
        assertEquals(33, percent(1u, 3u))
        assertEquals(100, percent(12u, 10u))
        assertEquals(100, percent(0u, 0u))
    }

    @Test
    fun aMeetingRoomSharesNoFiles() = runTest(timeout = 90.seconds) {
        withContext(Dispatchers.Default) {
            val solo = startedNode("solo")
            try {
                solo.startStadium()
                solo.setLocation(LocationFix(48.21820, 11.62470, 5.0))
                val room = solo.meetingRoomJoin()
                val vm = GroupChatViewModel(solo, room)
                // A room is no stored group: refresh fails, but knows it is the room.
                assertFalse(vm.refresh())
                assertTrue(vm.state.value.room)
                assertFalse(vm.state.value.canShareFiles)
                val picked = File(tempDir("picked"), "a.txt").apply { writeText("not for the room") }
                assertFalse(vm.sendFile(picked.path))
                assertNotNull(vm.state.value.error)
                assertFailsWith<PeernsException.NotAllowed> { solo.groupSendFile(room, picked.path) }
            } finally {
                solo.stop()
            }
        }
    }
}
