package org.peerns.app

import android.app.AlertDialog
import android.view.View
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.Switch
import android.widget.TextView
import android.widget.Toast
import kotlinx.coroutines.Job
import kotlinx.coroutines.delay
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch
import org.peerns.app.model.ChatItem
import org.peerns.app.model.ChatViewModel
import org.peerns.app.model.ContactsViewModel
import org.peerns.app.model.GroupsViewModel
import org.peerns.app.model.NearbyViewModel
import org.peerns.app.model.ScannedLink
import org.peerns.app.model.Screen
import org.peerns.app.model.SettingsViewModel
import org.peerns.app.model.describe
import org.peerns.app.model.describeCall
import org.peerns.app.model.grouped
import org.peerns.app.model.percent
import org.peerns.ffi.ChatMessage
import org.peerns.ffi.Contact
import org.peerns.ffi.FileTransferInfo
import org.peerns.ffi.FileTransferState
import org.peerns.ffi.NodeEvent
import org.peerns.ffi.Trust

/**
 * Contacts: our share link, add by link or by scanning its QR code (a scanned group invite joins
 * the group, as [groups] does), requests, contacts with their trust level.
 */
class ContactsView(host: Host, private val model: ContactsViewModel, private val groups: GroupsViewModel) : ScreenView(host) {
    private val link = ui.input("Paste a share link")
    private val shareLink = ui.text(monospace = true)
    private val error = ui.text()
    private val groupError = ui.text()
    private val requests = ui.column()
    private val contacts = ui.column()
    private var scanner: QrScanDialog? = null
    override val root = ui.column(20).with(
        ui.title("Contacts"),
        ui.label("Your share link (give it to people you want to reach you; Settings shows it as a QR code)"), shareLink,
        ui.label("Add a contact"), link,
        ui.row().with(
            ui.button("Send request") { act { if (model.add(link.text.toString())) link.setText("") } },
            ui.button("Scan QR") { scan() },
        ),
        error, groupError,
        ui.label("Requests"), requests,
        ui.label("Contacts"), contacts,
    )

    /** Opens the scanner (after the camera permission); a link it reads is used like a pasted one. */
    private fun scan() = host.withCamera {
        scanner?.dismiss()
        scanner = QrScanDialog(host) { scanned ->
            act { ScannedLink.use(scanned, model, groups)?.let(host.navigator::open) }
        }.also { it.show() }
    }

    override fun hidden() {
        scanner?.dismiss()
        scanner = null
    }

    override fun shown() {
        host.scope.launch { groups.state.collect { groupError.text = it.error ?: "" } }
        host.scope.launch {
            model.state.collect { state ->
                shareLink.text = state.shareLink
                error.text = state.error ?: state.notice ?: ""
                requests.removeAllViews()
                state.incoming.forEach { r ->
                    requests.addView(
                        ui.row().with(
                            ui.text("${r.name} wants to add you${if (r.later) " (later)" else ""}"),
                            ui.button("Accept") { act { model.accept(r.fingerprint) } },
                            ui.button("Later") { act { model.later(r.fingerprint) } }.apply {
                                visibility =
                                    if (r.later) View.GONE else View.VISIBLE
                            },
                            ui.button("Reject") { act { model.reject(r.fingerprint) } },
                        ),
                    )
                }
                state.outgoing.forEach { r ->
                    requests.addView(ui.text("${r.name.ifEmpty { r.fingerprint.take(8) }}: waiting for an answer"))
                }
                state.waiting.forEach { w ->
                    requests.addView(
                        ui.row().with(
                            ui.text("${w.fingerprint.take(8)}: not reachable yet, sent when you are both online"),
                            ui.button("Cancel") { act { model.cancel(w.fingerprint) } },
                        ),
                    )
                }
                if (requests.childCount == 0) requests.addView(ui.text("none"))
                contacts.removeAllViews()
                state.contacts.forEach { contacts.addView(contactRow(it)) }
                if (state.contacts.isEmpty()) contacts.addView(ui.text("none yet"))
            }
        }
        act { model.refresh() }
    }

    private fun contactRow(c: Contact): LinearLayout {
        val label = ContactsViewModel.trustChoices.first { it.first == c.trust }.second.substringBefore(':')
        return ui.column().with(
            ui.text("${c.name}  ${c.short}${if (c.verified) " ✓" else ""}"),
            ui.row().with(
                ui.button("Chat") { host.navigator.open(Screen.Chat(c.fingerprint)) },
                ui.button("Call") { host.call(c.fingerprint, video = false) },
                ui.button("Video call") { host.call(c.fingerprint, video = true) },
                ui.button("Trust: $label") { chooseTrust(c) },
                ui.button(if (c.verified) "Verified ✓" else "Verify") { verify(c) },
            ).apply {
                // A blocked contact's record is its block: the core refuses to remove it.
                if (c.trust != Trust.BLOCKED) addView(ui.button("Remove") { confirmRemove(c) })
            },
        )
    }

    /** Removing a contact forgets it and its trust (not the chat): asked first. */
    private fun confirmRemove(c: Contact) =
        ui.confirm("Remove ${c.name}? They are no longer a contact (no calls, no trust); your chat with them stays.", "Remove") {
            act { model.remove(c.fingerprint) }
        }

    /**
     * Shows both fingerprints to compare with what the contact's phone shows (its Settings):
     * the same, the contact is marked verified (✓); a verified one can be unmarked.
     */
    private fun verify(c: Contact) {
        val ours = ourFingerprint(host) ?: return
        val text = "${c.name}'s fingerprint:\n${grouped(c.fingerprint)}\n\nYours:\n${grouped(ours)}\n\n" +
            "Compare them with what ${c.name}'s phone shows, side by side or over a call. The same: nobody is in between."
        val dialog = AlertDialog.Builder(host.context).setTitle("Verify ${c.name}").setMessage(text)
        if (c.verified) {
            dialog.setPositiveButton("Unmark verified") { _, _ -> act { model.setVerified(c.fingerprint, false) } }
        } else {
            dialog.setPositiveButton("They match") { _, _ -> act { model.setVerified(c.fingerprint, true) } }
        }
        dialog.setNegativeButton("Cancel", null).show()
    }

    private fun chooseTrust(c: Contact) {
        val choices = ContactsViewModel.trustChoices
        AlertDialog.Builder(host.context)
            .setTitle("Trust ${c.name}")
            .setSingleChoiceItems(
                choices.map<Pair<*, String>, CharSequence> { it.second }.toTypedArray(),
                choices.indexOfFirst { it.first == c.trust },
            ) { dialog, which ->
                dialog.dismiss()
                act { model.setTrust(c.fingerprint, choices[which].first) }
            }
            .show()
    }

    override fun onEvent(event: NodeEvent) {
        if (model.concerns(event)) act { model.refresh() }
    }
}

/**
 * A chat: messages (edit or delete ours by a long press), text and files, the calls with the
 * contact among them, and group invitations with a Join button.
 */
class ChatView(host: Host, private val model: ChatViewModel) : ScreenView(host) {
    private val title = ui.title(model.conversation.take(8))
    private val online = ui.text()
    private val messages = ui.column()
    private val input = ui.input("Message")
    private val error = ui.text()
    private var shownCount = 0
    private val rows = Rows<ChatItem>(
        messages,
        key = { item ->
            when (item) {
                is ChatItem.Message -> "m" + item.message.id
                is ChatItem.Invitation -> "m" + item.message.id
                is ChatItem.Call -> "c" + item.entry.call
            }
        },
        make = { item ->
            when (item) {
                is ChatItem.Message -> messageView(item)
                is ChatItem.Invitation -> invitationView(item)
                is ChatItem.Call -> ui.text("📞 ${describeCall(item.entry)}")
            }
        },
    )
    override val root = ui.column(20).with(
        title,
        online,
        ui.row().with(
            ui.button("Call") { host.call(model.conversation, video = false) },
            ui.button("Video call") { host.call(model.conversation, video = true) },
        ),
        messages,
        error,
        input,
        ui.row().with(
            ui.button("Send") { act { if (model.send(input.text.toString())) input.setText("") } },
            ui.button("Send a file") { host.pickFile { path -> act { model.sendFile(path) } } },
        ),
    )

    override fun shown() {
        host.scope.launch {
            model.state.collect { state ->
                title.text = state.title
                online.text = listOfNotNull(if (state.online) "online" else "offline: messages wait until you meet", state.warning)
                    .joinToString("\n")
                error.text = state.error ?: ""
                // Only the rows that changed are made again (not for the online mark or an error).
                rows.show(state.items)
                val grew = state.items.size > shownCount
                shownCount = state.items.size
                // The newest line, at the bottom, is in sight when the chat opens and when one arrives.
                if (grew) (root.parent as? ScrollView)?.let { scroll -> scroll.post { scroll.smoothScrollTo(0, root.bottom) } }
            }
        }
        host.service?.chatOpened(model.conversation)
        act { model.open() }
    }

    override fun hidden() = model.close()

    /** A message's line; a file's with a progress bar while it moves, and Open once it is here. */
    private fun messageView(item: ChatItem.Message): View {
        val m = item.message
        val text = messageText(m, item.transfer)
        val t = item.transfer
        val path = t?.path
        val file = m.file
        return when {
            file != null && !m.deleted && path != null -> ui.row().with(text, ui.button("Open") { host.openFile(path, file.mime) })
            file != null && !m.deleted && t?.state == FileTransferState.TRANSFERRING && t.bytes > 0uL ->
                ui.column().with(text, ui.progress(percent(t.bytes, file.size)))
            else -> text
        }
    }

    private fun messageText(m: ChatMessage, transfer: FileTransferInfo?): TextView = ui.text(describe(m, transfer)).apply {
        if (m.outgoing && !m.deleted) {
            setOnLongClickListener {
                val actions = if (m.file == null) arrayOf<CharSequence>("Edit", "Delete") else arrayOf<CharSequence>("Delete")
                AlertDialog.Builder(host.context)
                    .setItems(actions) { _, which ->
                        if (m.file == null && which == 0) edit(m) else act { model.delete(m.id) }
                    }
                    .show()
                true
            }
        }
    }

    /** A group invite link: "Group invitation" and Join (theirs), or what we sent (ours). */
    private fun invitationView(item: ChatItem.Invitation): View = if (item.message.outgoing) {
        ui.text("me: Group invitation (sent)  [${item.message.status.name.lowercase()}]")
    } else {
        ui.row().with(
            ui.text("them: Group invitation"),
            ui.button("Join") { act { model.joinGroup(item.link)?.let { host.navigator.open(Screen.GroupChat(it)) } } },
        )
    }

    private fun edit(m: ChatMessage) {
        val field = ui.input("Message", m.text)
        AlertDialog.Builder(host.context)
            .setTitle("Edit")
            .setView(field)
            .setPositiveButton("Save") { _, _ -> act { model.edit(m.id, field.text.toString()) } }
            .setNegativeButton("Cancel", null)
            .show()
    }

    override fun onEvent(event: NodeEvent) {
        if (event is NodeEvent.FileProgress) model.onProgress(event)
        model.onWarning(event)
        if (model.concerns(event)) act { model.open() }
    }
}

/**
 * Stadium mode: on/off, the way to the meeting room, and the people nearby sorted by distance;
 * a notice while battery saver is on.
 */
class NearbyView(host: Host, private val model: NearbyViewModel) : ScreenView(host) {
    private val toggle = ui.button("Turn stadium mode on") { host.setStadium(!model.state.value.on) }
    private val room = ui.text()
    private val people = ui.column()
    private val error = ui.text()
    private val notice = ui.notice()
    private var polling: Job? = null
    override val root = ui.column(20).with(
        ui.title("Nearby"),
        ui.text("Stadium mode shares your approximate position with people nearby, under a pseudonym, while it is on."),
        notice,
        toggle,
        error,
        ui.button("Meeting room for everyone nearby") { host.navigator.open(Screen.MeetingRoom) },
        room,
        ui.label("People nearby, nearest first"),
        people,
    )

    override fun shown() {
        val service = host.service ?: return
        host.scope.launch { service.stadium.collect(model::setOn) }
        host.scope.launch { model.notice.collect(notice::showNotice) }
        host.scope.launch {
            model.state.collect { state ->
                toggle.text = if (state.on) "Turn stadium mode off" else "Turn stadium mode on"
                error.text = state.error ?: ""
                room.text = when (state.inRoom) {
                    0 -> if (state.on) "nobody nearby is in the meeting room yet" else ""
                    1 -> "1 person nearby is in the meeting room"
                    else -> "${state.inRoom} people nearby are in the meeting room"
                }
                people.removeAllViews()
                state.people.forEach { p ->
                    val inRoom = if (p.room != null) "  (in the meeting room)" else ""
                    people.addView(ui.text("${NearbyViewModel.distance(p)}  ${p.name}  ${p.short}$inRoom"))
                }
                if (state.people.isEmpty()) people.addView(ui.text(if (state.on) "nobody yet" else "stadium mode is off"))
                // Started or stopped only when stadium mode turns on or off: a new state (a
                // distance that moved) must not restart it, or it would poll at every change.
                if (state.on != (polling != null)) {
                    polling?.cancel()
                    polling = if (state.on) host.scope.launch { poll() } else null
                }
            }
        }
    }

    private suspend fun poll() {
        while (host.scope.isActive) {
            model.refresh()
            delay(model.pollMs)
        }
    }
}

/** Settings: display name, identity fingerprint and our share link's QR code, signaling server, start after a restart. */
class SettingsView(host: Host, private val model: SettingsViewModel) : ScreenView(host) {
    private val name = ui.input("Your name")
    private val fingerprint = ui.text(monospace = true)
    private val shareQr = ui.qrImage()
    private val url = ui.input("wss://…")
    private val note = ui.text()
    private val startAtBoot = Switch(host.context).apply { text = "Come back online (ask on Android 15+)" }
    override val root = ui.column(20).with(
        ui.title("Settings"),
        ui.label("Name"), name,
        ui.button("Save name") {
            act { if (model.saveName(name.text.toString())) Toast.makeText(host.context, "Name saved", Toast.LENGTH_SHORT).show() }
        },
        ui.label("Identity fingerprint (compare it with your contacts)"), fingerprint,
        ui.label("Your share link as a QR code (others scan it in Contacts to add you)"), shareQr,
        ui.label("Signaling server"), url,
        ui.button("Save server") { model.saveSignalingUrl(url.text.toString()) },
        note,
        ui.label("After a restart of the phone"),
        startAtBoot,
    )

    override fun shown() {
        model.refresh()
        val first = model.state.value
        name.setText(first.name)
        url.setText(first.signalingUrl)
        startAtBoot.isChecked = first.startAtBoot
        startAtBoot.setOnCheckedChangeListener { _, on -> model.setStartAtBoot(on) }
        host.scope.launch {
            model.state.collect { state ->
                fingerprint.text = "${state.shortFingerprint}\n${grouped(state.fingerprint)}"
                shareQr.showQr(state.shareLink, ui.dp(QR_DP))
                note.text =
                    state.error ?: if (state.restartNeeded) "Applies when PeerNS starts again (Stop it from its notification)." else ""
            }
        }
    }
}

/** The largest side of a QR code on screen, in dp. */
const val QR_DP = 300
