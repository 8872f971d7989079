package org.peerns.android

import android.app.Notification
import android.app.NotificationManager
import android.content.Context
import android.os.Build
import org.peerns.ffi.NotificationCategory
import org.peerns.ffi.Notifier
import org.peerns.ffi.PeernsNotification

/**
 * Posts the core's notifications in their [NotificationChannels]; one notification per
 * conversation, replaced by the next; a tap opens that conversation (see [openAppIntent]).
 * Posts nothing while notifications are off, which includes a POST_NOTIFICATIONS permission not
 * (yet) granted on Android 13+. Any thread may call it.
 */
class AndroidNotifier(
    context: Context,
    private val smallIcon: Int = android.R.drawable.stat_notify_chat,
) : Notifier {
    private val context = context.applicationContext
    private val manager = context.getSystemService(NotificationManager::class.java)

    init {
        NotificationChannels.create(context)
    }

    override fun notify(notification: PeernsNotification) {
        if (!manager.areNotificationsEnabled()) return
        manager.notify(notification.conversation ?: notification.title, ID, build(notification))
    }

    /** The system notification for [notification]. */
    fun build(notification: PeernsNotification): Notification =
        Notification.Builder(context, NotificationChannels.of(notification.category))
            .setSmallIcon(smallIcon)
            .setContentTitle(notification.title)
            .setContentText(notification.body)
            .setStyle(Notification.BigTextStyle().bigText(notification.body))
            .setCategory(
                when (notification.category) {
                    NotificationCategory.MESSAGE -> Notification.CATEGORY_MESSAGE
                    NotificationCategory.CONTACT_REQUEST -> Notification.CATEGORY_SOCIAL
                    NotificationCategory.INCOMING_CALL -> Notification.CATEGORY_CALL
                    NotificationCategory.MISSED_CALL ->
                        if (Build.VERSION.SDK_INT >= 30) Notification.CATEGORY_MISSED_CALL else Notification.CATEGORY_CALL
                },
            )
            .setContentIntent(openAppIntent(context, notification.conversation, notification.category))
            .setAutoCancel(true)
            .build()

    private companion object {
        /** With the conversation as tag, each conversation has one notification. */
        const val ID = 1
    }
}
