package org.peerns.android

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.Context
import android.content.Intent
import android.media.AudioAttributes
import android.media.RingtoneManager
import android.net.Uri
import org.peerns.ffi.NotificationCategory

/** The notification channels: one per [NotificationCategory], plus the service's own. */
object NotificationChannels {
    /** The foreground service's ongoing notification (low importance: no sound, no peeking). */
    const val SERVICE = "peerns.service"

    /** The channel of [category]. */
    fun of(category: NotificationCategory): String = when (category) {
        NotificationCategory.MESSAGE -> "peerns.messages"
        NotificationCategory.CONTACT_REQUEST -> "peerns.requests"
        // A new ID for the ringtone: a channel's sound cannot change once created.
        NotificationCategory.INCOMING_CALL -> "peerns.calls.ring"
        NotificationCategory.MISSED_CALL -> "peerns.missed_calls"
        NotificationCategory.GROUP_MESSAGE -> "peerns.group_messages"
        NotificationCategory.MONITOR_ALERT -> "peerns.monitor_alerts"
    }

    /** A high-importance channel [id] that sounds the phone's [ringtone] kind with [usage], and vibrates. */
    private fun sounding(id: String, name: String, what: String, ringtone: Int, usage: Int) =
        NotificationChannel(id, name, NotificationManager.IMPORTANCE_HIGH).apply {
            description = what
            setSound(
                RingtoneManager.getDefaultUri(ringtone),
                AudioAttributes.Builder().setUsage(usage).setContentType(AudioAttributes.CONTENT_TYPE_SONIFICATION).build(),
            )
            enableVibration(true)
        }

    /** Creates (or updates) every channel; cheap and idempotent. */
    fun create(context: Context) {
        val manager = context.getSystemService(NotificationManager::class.java)
        // The calls channel before it rang with the ringtone.
        manager.deleteNotificationChannel("peerns.calls")
        manager.createNotificationChannels(
            listOf(
                NotificationChannel(of(NotificationCategory.MESSAGE), "Messages", NotificationManager.IMPORTANCE_HIGH)
                    .apply { description = "Messages that arrive while PeerNS is in the background" },
                NotificationChannel(of(NotificationCategory.GROUP_MESSAGE), "Group messages", NotificationManager.IMPORTANCE_HIGH)
                    .apply { description = "Messages in your groups while PeerNS is in the background" },
                NotificationChannel(of(NotificationCategory.CONTACT_REQUEST), "Contact requests", NotificationManager.IMPORTANCE_DEFAULT)
                    .apply { description = "People who ask to become your contact" },
                // A self-managed calling app rings by itself: the phone's ringtone, as a ringtone.
                sounding(
                    of(NotificationCategory.INCOMING_CALL),
                    "Calls",
                    "A contact is calling you",
                    RingtoneManager.TYPE_RINGTONE,
                    AudioAttributes.USAGE_NOTIFICATION_RINGTONE,
                ),
                NotificationChannel(of(NotificationCategory.MISSED_CALL), "Missed calls", NotificationManager.IMPORTANCE_DEFAULT)
                    .apply { description = "Calls you did not answer" },
                // An alarm: the alarm sound at the alarm volume, heard with the ringer silenced.
                sounding(
                    of(NotificationCategory.MONITOR_ALERT),
                    "Baby monitor alerts",
                    "A baby monitor you watch hears a sound",
                    RingtoneManager.TYPE_ALARM,
                    AudioAttributes.USAGE_ALARM,
                ),
                NotificationChannel(SERVICE, "Reachability", NotificationManager.IMPORTANCE_LOW)
                    .apply { description = "Shown while peers can reach this device" },
            ),
        )
    }
}

/** The intent action of a notification tap: open [EXTRA_CONVERSATION], or the contact requests. */
const val ACTION_OPEN = "org.peerns.action.OPEN"

/** The intent extra that carries the conversation (a contact's fingerprint) a tap opens. */
const val EXTRA_CONVERSATION = "org.peerns.extra.CONVERSATION"

/** The intent extra that carries the [NotificationCategory] name of the tapped notification. */
const val EXTRA_CATEGORY = "org.peerns.extra.CATEGORY"

/**
 * Opens the app's launcher activity, explicitly (a launcher intent would only bring an existing
 * task to the front and drop the extras) and on top of its task, so a running activity receives
 * it in `onNewIntent`. Each conversation gets its own data URI, hence its own PendingIntent.
 */
fun openAppIntent(context: Context, conversation: String?, category: NotificationCategory? = null): PendingIntent? {
    val launcher = context.packageManager.getLaunchIntentForPackage(context.packageName)?.component ?: return null
    val intent = Intent(ACTION_OPEN)
        .setComponent(launcher)
        .setData(Uri.fromParts("peerns", conversation ?: category?.name ?: "home", null))
        .addFlags(Intent.FLAG_ACTIVITY_NEW_TASK or Intent.FLAG_ACTIVITY_CLEAR_TOP or Intent.FLAG_ACTIVITY_SINGLE_TOP)
    conversation?.let { intent.putExtra(EXTRA_CONVERSATION, it) }
    category?.let { intent.putExtra(EXTRA_CATEGORY, it.name) }
    // One PendingIntent per conversation and category (the request code): a message from a
    // caller must not turn the ringing call's full-screen intent into "open the chat".
    val requestCode = category?.ordinal?.plus(1) ?: 0
    return PendingIntent.getActivity(context, requestCode, intent, PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT)
}

/**
 * Says that PeerNS went offline by itself, and [why] (a sentence), with a tap that opens the app,
 * which starts the node again; nothing while notifications are off. The service takes it away
 * when it starts.
 */
fun notifyOffline(context: Context, why: String) {
    val manager = context.getSystemService(NotificationManager::class.java) ?: return
    if (!manager.areNotificationsEnabled()) return
    NotificationChannels.create(context)
    manager.notify(
        OFFLINE_TAG,
        0,
        Notification.Builder(context, NotificationChannels.SERVICE)
            .setSmallIcon(android.R.drawable.stat_notify_sync)
            .setContentTitle("PeerNS is offline")
            .setContentText("$why Tap to be reachable again.")
            .setContentIntent(openAppIntent(context, null))
            .setAutoCancel(true)
            .build(),
    )
}

/** The tag of [notifyOffline]'s notification. */
const val OFFLINE_TAG = "peerns.offline"

/** The action of an incoming call's Answer: opens the app, which answers the caller in [EXTRA_CONVERSATION]. */
const val ACTION_ANSWER = "org.peerns.action.ANSWER"

/** The service action of an incoming call's Decline (the caller in [EXTRA_CONVERSATION]). */
const val ACTION_DECLINE = "org.peerns.action.DECLINE"

/** The service action of a message notification's direct reply (the chat in [EXTRA_CONVERSATION]). */
const val ACTION_REPLY = "org.peerns.action.REPLY"

/** The [android.app.RemoteInput] key of the reply text. */
const val KEY_REPLY = "org.peerns.reply"

/**
 * Opens the app's launcher activity with [action] about [conversation], like [openAppIntent];
 * one PendingIntent per action and conversation.
 */
internal fun appIntent(context: Context, action: String, conversation: String, category: NotificationCategory? = null): PendingIntent? {
    val launcher = context.packageManager.getLaunchIntentForPackage(context.packageName)?.component ?: return null
    val intent = Intent(action)
        .setComponent(launcher)
        .setData(Uri.fromParts("peerns", conversation, action))
        .addFlags(Intent.FLAG_ACTIVITY_NEW_TASK or Intent.FLAG_ACTIVITY_CLEAR_TOP or Intent.FLAG_ACTIVITY_SINGLE_TOP)
        .putExtra(EXTRA_CONVERSATION, conversation)
    category?.let { intent.putExtra(EXTRA_CATEGORY, it.name) }
    // One PendingIntent per conversation and category (the request code): a message from a
    // caller must not turn the ringing call's full-screen intent into "open the chat".
    val requestCode = category?.ordinal?.plus(1) ?: 0
    return PendingIntent.getActivity(context, requestCode, intent, PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT)
}

/**
 * Starts [service] with [action] about [conversation]; [mutable] for a direct reply, whose
 * text the system adds to the intent.
 */
internal fun serviceIntent(
    context: Context,
    service: Class<*>,
    action: String,
    conversation: String,
    mutable: Boolean = false,
    category: NotificationCategory? = null,
): PendingIntent {
    val intent = Intent(context, service)
        .setAction(action)
        .setData(Uri.fromParts("peerns", conversation, action))
        .putExtra(EXTRA_CONVERSATION, conversation)
    category?.let { intent.putExtra(EXTRA_CATEGORY, it.name) }
    val flags = PendingIntent.FLAG_UPDATE_CURRENT or if (mutable) PendingIntent.FLAG_MUTABLE else PendingIntent.FLAG_IMMUTABLE
    return PendingIntent.getService(context, 0, intent, flags)
}
