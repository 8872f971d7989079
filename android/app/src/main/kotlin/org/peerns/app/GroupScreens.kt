package org.peerns.app

import android.graphics.Color
import android.graphics.drawable.GradientDrawable
import android.view.View
import android.widget.Button
import android.widget.Toast
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import org.peerns.android.media.CallAudioRouter
import org.peerns.app.model.GroupCallViewModel
import org.peerns.app.model.GroupChatItem
import org.peerns.app.model.GroupChatViewModel
import org.peerns.app.model.GroupsViewModel
import org.peerns.app.model.MeetingRoomViewModel
import org.peerns.app.model.Screen
import org.peerns.app.model.describeGroupFile
import org.peerns.app.model.percent
import org.peerns.ffi.CallParticipant
import org.peerns.ffi.Contact
import org.peerns.ffi.GroupCallPhase
import org.peerns.ffi.GroupEvent
import org.peerns.ffi.GroupFileTransfer
import org.peerns.ffi.GroupMember
import org.peerns.ffi.GroupMembership
import org.peerns.ffi.GroupMessage

/** Groups: ours, create one, join by an invite link; a contact's invite that joined us is told once. */
class GroupsView(host: Host, private val model: GroupsViewModel) : ScreenView(host) {
    private val name = ui.input("Name of a new group")
    private val link = ui.input("Paste an invite link")
    private val error = ui.text()
    private val notice = ui.text()
    private val groups = ui.column()
    override val root = ui.column(20).with(
        ui.title("Groups"),
        notice,
        groups,
        ui.label("New group"), name,
        ui.button("Create") {
            act {
                model.create(name.text.toString())?.let {
                    name.setText("")
                    host.navigator.open(Screen.GroupChat(it))
                }
            }
        },
        ui.label("Join a group"), link,
        ui.button("Join") {
            act {
                model.join(link.text.toString())?.let {
                    link.setText("")
                    host.navigator.open(Screen.GroupChat(it))
                }
            }
        },
        error,
    )

    override fun shown() {
        host.scope.launch {
            model.state.collect { state ->
                error.text = state.error ?: ""
                state.notice?.let {
                    // Shown once: as a toast, and on the screen until it is left.
                    notice.text = it
                    Toast.makeText(host.context, it, Toast.LENGTH_LONG).show()
                    model.noticeShown()
                }
                groups.removeAllViews()
                state.groups.forEach { g ->
                    val note = when (g.membership) {
                        GroupMembership.PENDING -> "  (joining…)"
                        GroupMembership.FORMER -> "  (left)"
                        else -> ""
                    }
                    groups.addView(
                        ui.button("${g.name}  ·  ${g.members.size} members$note") {
                            host.navigator.open(Screen.GroupChat(g.id))
                        },
                    )
                }
                if (state.groups.isEmpty()) groups.addView(ui.text("no groups yet"))
            }
        }
        act { model.refresh() }
    }

    override fun onGroupEvent(event: GroupEvent) {
        if (model.concerns(event)) act { model.onGroupEvent(event) }
    }
}

/**
 * A group's chat (text, and files: shared from a picked file, shown with their size, progress
 * while they come, Open once here and verified, or that they could not be verified), its members
 * (admins invite contacts by a chat message, or anyone by an invite link as text and QR code, and
 * remove members), its call, leaving it, deleting it from the phone. A meeting room shares no
 * files: no file button there.
 */
class GroupChatView(host: Host, private val model: GroupChatViewModel, private val invites: GroupsViewModel) : ScreenView(host) {
    private val title = ui.title(model.group.take(8))
    private val info = ui.text()
    private val messages = ui.column()
    private val input = ui.input("Message")
    private val error = ui.text()
    private val members = ui.column()
    private val invite = ui.input("Fingerprint of the person to invite")
    private val inviteLink = ui.text(monospace = true)
    private val inviteQr = ui.qrImage()
    private val contacts = ui.column()
    private val inviteNotice = ui.text()
    private val noContacts = ui.text("no contacts to invite")
    private val messageRows = Rows<GroupChatItem>(messages, key = { it.message.id }, make = ::itemView)
    private val memberRows = Rows<MemberRow>(members, key = { it.member.fingerprint }, make = ::memberView)
    private val contactRows = Rows<ContactRow>(contacts, key = { it.contact.fingerprint }, make = ::contactView)
    private val leave = ui.button("Leave the group") { confirmLeave() }
    private val delete = ui.button("Delete the group") { confirmDelete() }
    private val shareFile = ui.button("Share a file") { host.pickFile { path -> act { model.sendFile(path) } } }
    private val adminTools = ui.column().with(
        ui.label("Invite a contact (they get the invitation in your chat; those who trust you join at once)"),
        contacts,
        noContacts,
        inviteNotice,
        ui.label("Invite anyone by a link"),
        invite,
        ui.button("Make an invite link") { act { invites.invite(model.group, invite.text.toString()) } },
        inviteLink,
        inviteQr,
    )
    override val root = ui.column(20).with(
        title, info,
        ui.button("Group call") { host.navigator.open(Screen.GroupCall(model.group)) },
        messages, error, input,
        ui.row().with(
            ui.button("Send") { act { if (model.send(input.text.toString())) input.setText("") } },
            shareFile,
        ),
        ui.label("Members"), members, adminTools,
        leave,
        delete,
    )

    override fun shown() {
        me = ourFingerprint(host)
        // The group's notification (and the replies it showed) goes with its chat open.
        host.service?.chatOpened(model.group)
        host.scope.launch {
            model.state.collect { state ->
                title.text = state.name
                info.text = when {
                    state.membership == GroupMembership.PENDING -> "joining: waiting for a member to come online"
                    state.membership == GroupMembership.FORMER -> "you are no longer a member"
                    state.router -> "this phone routes the group now"
                    else -> "${state.members.size} members"
                }
                error.text = state.error ?: ""
                // Only the rows that changed are made again: a file's progress touches its own.
                messageRows.show(state.items)
                shareFile.visibility = if (state.canShareFiles) View.VISIBLE else View.GONE
                leave.visibility = if (state.canLeave) View.VISIBLE else View.GONE
                delete.visibility = if (state.canDelete) View.VISIBLE else View.GONE
                memberRows.show(state.members.map { MemberRow(it, removable = state.admin && it.fingerprint != me) })
                contactRows.show(state.invitable.map { ContactRow(it, it.fingerprint in state.invited) })
                noContacts.visibility = if (state.invitable.isEmpty()) View.VISIBLE else View.GONE
                inviteNotice.text = state.notice ?: ""
                adminTools.visibility = if (state.admin) View.VISIBLE else View.GONE
            }
        }
        host.scope.launch {
            invites.state.collect {
                inviteLink.text = it.inviteLink ?: it.error ?: ""
                // The invited person can scan it in their Contacts screen instead of pasting it.
                inviteQr.showQr(it.inviteLink, ui.dp(QR_DP))
            }
        }
        act { model.open() }
    }

    override fun hidden() = model.close()

    /** Our fingerprint, read when shown. */
    private var me: String? = null

    private fun name(fingerprint: String) = if (fingerprint == me) "me" else model.state.value.nameOf(fingerprint)

    private fun line(m: GroupMessage) = "${name(m.author)}: ${m.text}"

    /** A message, or a file: its line, a progress bar while it comes, Open once it is here. */
    private fun itemView(item: GroupChatItem): View = when (item) {
        is GroupChatItem.Message -> ui.text(line(item.message))
        is GroupChatItem.File -> {
            val text = ui.text("${name(item.message.author)}: ${describeGroupFile(item.file, item.status)}")
            val path = item.status.path
            when {
                item.status.done && path != null -> ui.row().with(text, ui.button("Open") { host.openFile(path, item.file.mime) })
                item.status.state == GroupFileTransfer.TRANSFERRING && item.status.received > 0uL ->
                    ui.column().with(text, ui.progress(percent(item.status.received, item.file.size)))
                else -> text
            }
        }
    }

    /** A member's row: Remove beside them when [removable] (we are an admin, they are not us). */
    private data class MemberRow(val member: GroupMember, val removable: Boolean)

    private fun memberView(row: MemberRow): View {
        val m = row.member
        val marks = listOfNotNull("admin".takeIf { m.admin }, "online".takeIf { m.online && m.fingerprint != me })
        val label = name(m.fingerprint) + if (marks.isEmpty()) "" else "  (${marks.joinToString(", ")})"
        return if (row.removable) ui.row().with(ui.text(label), ui.button("Remove") { confirmRemove(m.fingerprint) }) else ui.text(label)
    }

    /** A contact we may invite, or did. */
    private data class ContactRow(val contact: Contact, val invited: Boolean)

    private fun contactView(row: ContactRow): View {
        val c = row.contact
        return if (row.invited) {
            ui.text("${c.name.ifBlank { c.short }}  (invited)")
        } else {
            ui.row().with(
                ui.text(c.name.ifBlank { c.short }),
                ui.button("Invite") { act { model.sendInvite(c.fingerprint) } },
            )
        }
    }

    /** Leaving cannot be undone (a former member cannot be invited again): asked first. */
    private fun confirmLeave() = ui.confirm(
        "Leave ${model.state.value.name}? You receive nothing sent afterwards, and cannot join this group again.",
        "Leave",
    ) { act { if (model.leave()) host.navigator.back() } }

    /** Deleting cannot be undone either: asked first, saying that a member leaves too. */
    private fun confirmDelete() {
        val s = model.state.value
        val leaving = if (s.canLeave) " You leave it first, and cannot join it again." else ""
        ui.confirm("Delete ${s.name} and its messages and files from this phone?$leaving", "Delete") {
            act { if (model.delete()) host.navigator.back() }
        }
    }

    private fun confirmRemove(fingerprint: String) =
        ui.confirm("Remove ${name(fingerprint)} from the group? It receives nothing sent afterwards.", "Remove") {
            act { model.remove(fingerprint) }
        }

    override fun onGroupEvent(event: GroupEvent) {
        model.onGroupEvent(event)
        model.fileToLoad(event)?.let { file -> act { model.loadFile(file) } }
        if (model.needsRefresh(event)) act { model.refresh() }
    }
}

/**
 * A group's call: who is in it, who speaks (their tile framed in green and marked "speaking"),
 * and whose media arrives, join and leave, mute, camera; with
 * [media] (Android 10+), our camera and microphone are sent and the others' sound played and
 * their pictures shown in a grid ([CallPictures], chosen by the model's `CallGrid`) while the
 * screen is shown. Under battery saver a notice says that the camera starts off.
 */
class GroupCallView(host: Host, private val model: GroupCallViewModel, private val media: AndroidCallMedia?) : ScreenView(host) {
    private val phase = ui.text()
    private val participants = ui.column()
    private val error = ui.text()
    private val notice = ui.notice()
    private val joinLeave = ui.button("Join") {
        if (model.state.value.phase != GroupCallPhase.OUT) {
            router.stop()
            act { model.leave() }
            host.service?.setCapturing(camera = false, microphone = false)
        } else if (media == null) {
            act { model.join(video = true) }
        } else {
            host.withMedia(camera = true) { camera ->
                host.service?.setCapturing(camera, microphone = true)
                // A group call is watched at arm's length: aloud unless a headset is there.
                router.start(video = true)
                act { model.join(video = camera) }
            }
        }
    }

    // Where the sound goes (speaker, earpiece, headset): the button moves it on, shown once there is a choice.
    private val route: Button = ui.button("Speaker") { router.next() }.apply { visibility = View.GONE }
    private val router: CallAudioRouter = CallAudioRouter(host.context) { current, available ->
        route.text = current?.label ?: "Speaker"
        route.visibility = if (available.size > 1) View.VISIBLE else View.GONE
    }
    private val pictures = CallPictures(host.context, media)
    private val ownPicture = localPicture(host, media)
    private val mute = ui.button("Mute") { act { model.setMuted(!model.state.value.muted) } }
    private val camera = ui.button("Camera off") { act { model.setCameraOff(!model.state.value.cameraOff) } }

    private val shareScreen = ScreenShareButton(host, media, { model.state.value.screen }) { model.shareScreen(it) }
    private val browserId = ui.input("A browser's PeerJS ID (admins)")
    private val letIn = ui.button("Let the browser in") {
        val id = browserId.text.toString()
        act { if (model.allowBrowser(id)) browserId.setText("") }
    }
    private val browsers = ui.text()
    override val root = ui.column(20).with(
        ui.title("Group call"),
        phase,
        error,
        notice,
        ui.row().with(joinLeave, mute, camera, shareScreen.button, route),
        pictures.root,
        ownPicture,
        ui.label("In the call"),
        participants,
        ui.row().with(browserId, letIn),
        browsers,
    )

    override fun hidden() {
        router.stop()
        media?.close()
        host.service?.setCapturing(camera = false, microphone = false)
        host.service?.setScreenShared(false)
        host.keepScreenOn(false)
        // The screen goes for good (not the app to the background: then it stays): leave, or
        // we would stay in the call unheard, with nothing on screen to leave it.
        if (model.state.value.phase != GroupCallPhase.OUT) CoroutineScope(Dispatchers.Default).launch { model.leave() }
    }

    // A joined call goes on with the screen off or another app shown.
    override val keepsRunning: Boolean get() = model.state.value.phase != GroupCallPhase.OUT

    override fun shown() {
        host.scope.launch { model.notice.collect(notice::showNotice) }
        host.scope.launch {
            model.state.collect { state ->
                host.keepScreenOn(state.phase == GroupCallPhase.CONNECTED && (state.pictures.isNotEmpty() || !state.cameraOff))
                phase.text = when (state.phase) {
                    GroupCallPhase.OUT -> "not in the call"
                    GroupCallPhase.WAITING -> "waiting for the group's router"
                    GroupCallPhase.CONNECTING -> "connecting…"
                    GroupCallPhase.CONNECTED ->
                        (if (state.direct) "in the call, direct" else "in the call") +
                            if (state.targetBps > 0) " (up to ${state.targetBps / 1000} kbit/s)" else ""
                }
                error.text = state.error ?: ""
                joinLeave.text = if (state.phase == GroupCallPhase.OUT) "Join" else "Leave"
                browsers.text = if (state.browsers.isEmpty()) "" else "Browsers let in: " + state.browsers.joinToString()
                mute.text = if (state.muted) "Unmute" else "Mute"
                camera.text = if (state.cameraOff) "Camera on" else "Camera off"
                shareScreen.show(state.screen, available = state.sendsScreen)
                // Ourselves, small, while our camera sends.
                val ownShown = media != null && state.phase != GroupCallPhase.OUT && !state.cameraOff && !state.screen
                ownPicture.visibility = if (ownShown) View.VISIBLE else View.GONE
                val byFp = state.participants.associateBy { it.fingerprint }
                pictures.show(
                    state.pictures.map { fp -> fp to if (byFp[fp]?.media?.screen == true) "screen" else "video" },
                    state.speaking,
                ) { fp -> state.nameOf(fp) }
                participants.removeAllViews()
                state.participants.forEach { p ->
                    val speaking = p.fingerprint in state.speaking
                    participants.addView(
                        ui.text(tile(p, state.frames[p.fingerprint] ?: 0, speaking)).apply {
                            if (speaking) highlight(this)
                        },
                    )
                }
                if (state.participants.isEmpty()) participants.addView(ui.text("nobody"))
            }
        }
        act { model.refresh() }
    }

    private fun tile(p: CallParticipant, frames: Long, speaking: Boolean): String {
        val marks = listOfNotNull(
            "speaking".takeIf { speaking },
            "muted".takeIf { p.media.muted },
            "camera off".takeIf { p.media.cameraOff || !p.kinds.video },
            "sharing the screen".takeIf { p.media.screen },
            "connecting".takeIf { !p.connected },
            "$frames frames".takeIf { frames > 0 },
        )
        return model.state.value.nameOf(p.fingerprint) + if (marks.isEmpty()) "" else "  (${marks.joinToString(", ")})"
    }

    /** A speaker's tile: a green frame around it. */
    private fun highlight(view: View) {
        view.background = GradientDrawable().apply {
            setStroke(ui.dp(3), SPEAKING)
            cornerRadius = ui.dp(6).toFloat()
        }
        ui.dp(6).let { view.setPadding(it, it, it, it) }
    }

    private companion object {
        val SPEAKING = Color.rgb(0x2e, 0x7d, 0x32)
    }

    override fun onGroupEvent(event: GroupEvent) = model.onGroupEvent(event)
}

/**
 * The meeting room for everyone nearby: joined when the screen opens (stadium mode must be on),
 * its messages, send, leave. Closing the screen keeps us in the room; its history is reloaded
 * when it opens again.
 */
class MeetingRoomView(host: Host, private val model: MeetingRoomViewModel) : ScreenView(host) {
    private val info = ui.text()
    private val messages = ui.column()
    private val noMessages = ui.text("no messages yet")
    private val messageRows = Rows<GroupMessage>(messages, key = { it.id }) { m ->
        ui.text("${if (m.author == me) "me" else m.author.take(8)}: ${m.text}")
    }
    private val input = ui.input("Message to everyone in the room")
    private val error = ui.text()
    private val join = ui.button("Join again") { act { model.join() } }
    override val root = ui.column(20).with(
        ui.title("Meeting room"),
        ui.text("Everyone nearby in stadium mode can read and write here. Nothing of it is stored; it fades when the last person leaves."),
        info, join, messages, noMessages, error, input,
        ui.button("Send") { act { if (model.send(input.text.toString())) input.setText("") } },
        ui.button("Leave the room") { act { if (model.leave()) host.navigator.back() } },
    )

    /** Our fingerprint, read when shown. */
    private var me: String? = null

    override fun shown() {
        me = ourFingerprint(host)
        host.scope.launch {
            model.state.collect { state ->
                info.text = when {
                    state.joining -> "looking for the room nearby…"
                    state.room == null -> "not in the room (stadium mode must be on)"
                    state.router -> "this phone routes the room now"
                    else -> "in the room ${state.room.take(8)}"
                }
                join.visibility = if (state.room == null && !state.joining) View.VISIBLE else View.GONE
                error.text = state.error ?: ""
                // Only a new or changed message's row is made (as in a group's chat).
                messageRows.show(state.messages)
                noMessages.visibility = if (state.room != null && state.messages.isEmpty()) View.VISIBLE else View.GONE
            }
        }
        act { if (model.refresh() && model.state.value.room == null) model.join() }
    }

    override fun onGroupEvent(event: GroupEvent) {
        model.onGroupEvent(event)
        if (model.needsRefresh(event)) act { model.refresh() }
    }
}
