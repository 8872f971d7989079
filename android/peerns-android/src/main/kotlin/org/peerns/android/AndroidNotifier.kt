package org.peerns.android

import android.app.Notification
import android.app.NotificationManager
import android.app.Person
import android.app.RemoteInput
import android.content.Context
import android.graphics.drawable.Icon
import android.os.Build
import org.peerns.ffi.NotificationCategory
import org.peerns.ffi.Notifier
import org.peerns.ffi.PeernsNotification

/**
 * Posts the core's notifications in their [NotificationChannels]; one notification per
 * conversation and category, replaced by the next; a tap opens that conversation (see
 * [openAppIntent]). Posts nothing while notifications are off, which includes a
 * POST_NOTIFICATIONS permission not (yet) granted on Android 13+. Any thread may call it.
 *
 * On Android 9+ messages use [Notification.MessagingStyle] with the conversation's recent
 * messages; on Android 12+ an incoming call uses [Notification.CallStyle] with a full-screen
 * intent. With [actions], the service that handles [ACTION_REPLY] and [ACTION_DECLINE] (see
 * [PeernsService]), messages get a direct reply and calls Answer (opens the app, [ACTION_ANSWER])
 * and Decline.
 */
class AndroidNotifier(
    context: Context,
    private val smallIcon: Int = android.R.drawable.stat_notify_chat,
    private val actions: Class<*>? = null,
) : Notifier {
    private val context = context.applicationContext
    private val manager = context.getSystemService(NotificationManager::class.java)

    /** The recent messages of each conversation's notification, oldest first. */
    private val recent = mutableMapOf<String, List<Line>>()

    /** One line of a messaging notification: [sender] null is us. */
    private data class Line(val text: String, val atMs: Long, val sender: String?)

    init {
        NotificationChannels.create(context)
    }

    override fun notify(notification: PeernsNotification) {
        if (!manager.areNotificationsEnabled()) return
        manager.notify(notification.conversation ?: notification.title, idOf(notification.category), build(notification))
    }

    /** The system notification for [notification]. */
    fun build(notification: PeernsNotification): Notification {
        val conversation = notification.conversation
        val builder = Notification.Builder(context, NotificationChannels.of(notification.category))
            .setSmallIcon(smallIcon)
            .setContentTitle(notification.title)
            .setContentText(notification.body)
            .setCategory(categoryOf(notification.category))
            .setContentIntent(openAppIntent(context, conversation, notification.category))
            .setAutoCancel(true)
        when {
            notification.category == NotificationCategory.MESSAGE && conversation != null && Build.VERSION.SDK_INT >= 28 ->
                messaging(
                    builder,
                    conversation,
                    notification.title,
                    Line(notification.body, System.currentTimeMillis(), notification.title),
                )
            notification.category == NotificationCategory.INCOMING_CALL && conversation != null ->
                incomingCall(builder, conversation, notification.title)
            // A group's messages: the core's summary, and Reply into the group.
            notification.category == NotificationCategory.GROUP_MESSAGE && conversation != null -> {
                builder.setStyle(Notification.BigTextStyle().bigText(notification.body))
                replyAction(conversation, NotificationCategory.GROUP_MESSAGE)?.let(builder::addAction)
            }
            else -> builder.setStyle(Notification.BigTextStyle().bigText(notification.body))
        }
        return builder.build().apply {
            // The ringtone repeats until the call is answered, declined or over (then it goes).
            if (notification.category == NotificationCategory.INCOMING_CALL) flags = flags or Notification.FLAG_INSISTENT
        }
    }

    /**
     * Our direct reply [text] went out in [conversation] (a group's when [group]): shows it
     * under the messages (Android keeps a reply spinner until the notification is updated).
     */
    fun replied(conversation: String, title: String, text: String, group: Boolean = false) {
        if (!manager.areNotificationsEnabled()) return
        val (builder, category) = afterReply(conversation, group, title)
        if (Build.VERSION.SDK_INT >= 28) {
            messaging(builder, conversation, title, Line(text, System.currentTimeMillis(), null), category)
        } else {
            // No MessagingStyle before Android 9: the reply as text (the update ends the spinner).
            builder.setContentText("You: $text").setStyle(Notification.BigTextStyle().bigText("You: $text"))
            replyAction(conversation, category)?.let(builder::addAction)
        }
        manager.notify(conversation, idOf(category), builder.build())
    }

    /**
     * Our direct reply [text] to [conversation] (a group's when [group]) could not be sent
     * ([reason]): the notification says so in place of its reply spinner, with Reply again;
     * a tap opens the chat.
     */
    fun replyNotSent(conversation: String, group: Boolean, text: String, reason: String) {
        if (!manager.areNotificationsEnabled()) return
        val (builder, category) = afterReply(conversation, group, "Reply not sent")
        builder.setContentText("\u201C$text\u201D: $reason").setStyle(Notification.BigTextStyle().bigText("\u201C$text\u201D: $reason"))
        replyAction(conversation, category)?.let(builder::addAction)
        manager.notify(conversation, idOf(category), builder.build())
    }

    /**
     * The notification that replaces [conversation]'s (a group's when [group]) after a direct
     * reply, titled [title]: silent, a tap opens the chat; and its category.
     */
    private fun afterReply(conversation: String, group: Boolean, title: String): Pair<Notification.Builder, NotificationCategory> {
        val category = if (group) NotificationCategory.GROUP_MESSAGE else NotificationCategory.MESSAGE
        val builder = Notification.Builder(context, NotificationChannels.of(category))
            .setSmallIcon(smallIcon)
            .setContentTitle(title)
            .setCategory(Notification.CATEGORY_MESSAGE)
            .setContentIntent(openAppIntent(context, conversation, category))
            .setOnlyAlertOnce(true)
            .setAutoCancel(true)
        return builder to category
    }

    /** Removes the incoming-call notification of [caller] (answered, declined, or over). */
    fun cancelCall(caller: String) = cancelCall(context, caller)

    /**
     * Forgets the messages of [conversation] (a contact's, or a group's ID) and removes its
     * notification (the chat was read).
     */
    fun clear(conversation: String) {
        synchronized(recent) { recent.remove(conversation) }
        manager.cancel(conversation, idOf(NotificationCategory.MESSAGE))
        manager.cancel(conversation, idOf(NotificationCategory.GROUP_MESSAGE))
    }

    private fun messaging(
        builder: Notification.Builder,
        conversation: String,
        title: String,
        line: Line,
        category: NotificationCategory = NotificationCategory.MESSAGE,
    ) {
        if (Build.VERSION.SDK_INT < 28) return
        val lines = synchronized(recent) {
            ((recent[conversation] ?: emptyList()) + line).takeLast(MAX_LINES).also { recent[conversation] = it }
        }
        val me = Person.Builder().setName("You").build()
        val style = Notification.MessagingStyle(me).setConversationTitle(title)
            .setGroupConversation(category == NotificationCategory.GROUP_MESSAGE)
        lines.forEach { l ->
            val sender = l.sender?.let { Person.Builder().setName(it).setKey(conversation).build() }
            style.addMessage(Notification.MessagingStyle.Message(l.text, l.atMs, sender))
        }
        builder.setStyle(style)
        replyAction(conversation, category)?.let(builder::addAction)
    }

    /** Reply (a direct reply the service sends) into [conversation], a contact's or a group's ([category]). */
    private fun replyAction(conversation: String, category: NotificationCategory): Notification.Action? {
        val service = actions ?: return null
        val input = RemoteInput.Builder(KEY_REPLY).setLabel("Reply").build()
        return Notification.Action.Builder(
            Icon.createWithResource(context, android.R.drawable.ic_menu_send),
            "Reply",
            serviceIntent(context, service, ACTION_REPLY, conversation, mutable = true, category = category),
        )
            .addRemoteInput(input)
            .setSemanticAction(Notification.Action.SEMANTIC_ACTION_REPLY)
            .build()
    }

    private fun incomingCall(builder: Notification.Builder, caller: String, name: String) {
        // Posted again by Telecom's onShowIncomingCallUi: it rings once, not twice.
        // Gone by itself after the ring: a process killed while it rang cannot remove it, and
        // the insistent sound would go on until the shade is opened.
        builder.setOngoing(true).setAutoCancel(false).setOnlyAlertOnce(true).setTimeoutAfter(RING_NOTIFICATION_MS)
            .setFullScreenIntent(openAppIntent(context, caller, NotificationCategory.INCOMING_CALL), true)
        val service = actions ?: return
        val answer = appIntent(context, ACTION_ANSWER, caller, NotificationCategory.INCOMING_CALL) ?: return
        val decline = serviceIntent(context, service, ACTION_DECLINE, caller)
        if (Build.VERSION.SDK_INT >= 31) {
            builder.setStyle(Notification.CallStyle.forIncomingCall(Person.Builder().setName(name).setKey(caller).build(), decline, answer))
        } else {
            builder.addAction(
                Notification.Action.Builder(Icon.createWithResource(context, android.R.drawable.ic_menu_call), "Answer", answer).build(),
            )
            builder.addAction(
                Notification.Action.Builder(
                    Icon.createWithResource(context, android.R.drawable.ic_menu_close_clear_cancel),
                    "Decline",
                    decline,
                ).build(),
            )
        }
    }

    companion object {
        /** How long an incoming call's notification lasts: past the core's 45 s ring. */
        const val RING_NOTIFICATION_MS = 60_000L

        /** Messages shown per conversation. */
        private const val MAX_LINES = 6

        /** With the conversation as tag, each conversation has one notification per category. */
        private fun idOf(category: NotificationCategory) = category.ordinal + 1

        /** Removes the incoming-call notification of [caller], with or without a notifier. */
        fun cancelCall(context: Context, caller: String) =
            context.getSystemService(NotificationManager::class.java).cancel(caller, idOf(NotificationCategory.INCOMING_CALL))

        private fun categoryOf(category: NotificationCategory) = when (category) {
            NotificationCategory.MESSAGE, NotificationCategory.GROUP_MESSAGE -> Notification.CATEGORY_MESSAGE
            NotificationCategory.CONTACT_REQUEST -> Notification.CATEGORY_SOCIAL
            NotificationCategory.INCOMING_CALL -> Notification.CATEGORY_CALL
            NotificationCategory.MISSED_CALL ->
                if (Build.VERSION.SDK_INT >= 30) Notification.CATEGORY_MISSED_CALL else Notification.CATEGORY_CALL
            NotificationCategory.MONITOR_ALERT -> Notification.CATEGORY_ALARM
        }
    }
}
