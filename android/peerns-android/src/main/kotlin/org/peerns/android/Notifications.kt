package org.peerns.android

import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.Context
import android.content.Intent
import org.peerns.ffi.NotificationCategory

/** The notification channels: one per [NotificationCategory], plus the service's own. */
object NotificationChannels {
    /** The foreground service's ongoing notification (low importance: no sound, no peeking). */
    const val SERVICE = "peerns.service"

    /** The channel of [category]. */
    fun of(category: NotificationCategory): String = when (category) {
        NotificationCategory.MESSAGE -> "peerns.messages"
        NotificationCategory.CONTACT_REQUEST -> "peerns.requests"
    }

    /** Creates (or updates) every channel; cheap and idempotent. */
    fun create(context: Context) {
        context.getSystemService(NotificationManager::class.java).createNotificationChannels(
            listOf(
                NotificationChannel(of(NotificationCategory.MESSAGE), "Messages", NotificationManager.IMPORTANCE_HIGH)
                    .apply { description = "Messages that arrive while PeerNS is in the background" },
                NotificationChannel(of(NotificationCategory.CONTACT_REQUEST), "Contact requests", NotificationManager.IMPORTANCE_DEFAULT)
                    .apply { description = "People who ask to become your contact" },
                NotificationChannel(SERVICE, "Reachability", NotificationManager.IMPORTANCE_LOW)
                    .apply { description = "Shown while peers can reach this device" },
            ),
        )
    }
}

/** The intent extra that carries the conversation a notification opens. */
const val EXTRA_CONVERSATION = "org.peerns.extra.CONVERSATION"

/** Opens the app's launcher activity, with [conversation] in [EXTRA_CONVERSATION] when set. */
fun openAppIntent(context: Context, conversation: String?): PendingIntent? {
    val intent = context.packageManager.getLaunchIntentForPackage(context.packageName) ?: return null
    intent.addFlags(Intent.FLAG_ACTIVITY_SINGLE_TOP)
    conversation?.let { intent.putExtra(EXTRA_CONVERSATION, it) }
    return PendingIntent.getActivity(
        context,
        conversation.hashCode(),
        intent,
        PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
    )
}
