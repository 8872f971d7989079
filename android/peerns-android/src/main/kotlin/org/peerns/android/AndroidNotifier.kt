package org.peerns.android

import android.app.Notification as SystemNotification
import android.app.NotificationManager
import android.content.Context
import org.peerns.ffi.Notification
import org.peerns.ffi.NotificationCategory
import org.peerns.ffi.Notifier

/**
 * Posts the core's notifications in their [NotificationChannels]; one notification per
 * conversation, replaced by the next. Posts nothing while notifications are off, which includes
 * a POST_NOTIFICATIONS permission not (yet) granted on Android 13+. Any thread may call it.
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

    override fun notify(notification: Notification) {
        if (!manager.areNotificationsEnabled()) return
        val built = SystemNotification.Builder(context, NotificationChannels.of(notification.category))
            .setSmallIcon(smallIcon)
            .setContentTitle(notification.title)
            .setContentText(notification.body)
            .setStyle(SystemNotification.BigTextStyle().bigText(notification.body))
            .setCategory(
                when (notification.category) {
                    NotificationCategory.MESSAGE -> SystemNotification.CATEGORY_MESSAGE
                    NotificationCategory.CONTACT_REQUEST -> SystemNotification.CATEGORY_SOCIAL
                },
            )
            .setContentIntent(openAppIntent(context, notification.conversation))
            .setAutoCancel(true)
            .build()
        manager.notify(notification.conversation ?: notification.title, ID, built)
    }

    private companion object {
        /** With the conversation as tag, each conversation has one notification. */
        const val ID = 1
    }
}
