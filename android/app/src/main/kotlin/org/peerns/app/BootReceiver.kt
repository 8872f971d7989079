package org.peerns.app

import android.app.Notification
import android.app.NotificationManager
import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.os.Build
import org.peerns.android.NotificationChannels
import org.peerns.android.openAppIntent

/**
 * Brings PeerNS back online after the phone restarts, for users who turned it on in the
 * settings (the receiver is disabled otherwise: [AppSettings.startAtBoot]).
 *
 * Up to Android 14 it starts the node's service. From Android 15 a boot receiver may not start
 * a dataSync foreground service, so it posts a notification whose tap opens the app (which
 * starts the service).
 */
class BootReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        if (intent.action != Intent.ACTION_BOOT_COMPLETED || !AppSettings(context).startAtBoot) return
        if (Build.VERSION.SDK_INT < Build.VERSION_CODES.VANILLA_ICE_CREAM) {
            context.startForegroundService(Intent(context, AppService::class.java))
            return
        }
        val manager = context.getSystemService(NotificationManager::class.java)
        if (!manager.areNotificationsEnabled()) return
        NotificationChannels.create(context)
        manager.notify(
            NOTIFICATION_TAG,
            0,
            Notification.Builder(context, NotificationChannels.SERVICE)
                .setSmallIcon(android.R.drawable.stat_notify_sync)
                .setContentTitle("PeerNS is offline")
                .setContentText("The phone restarted. Tap to be reachable again.")
                .setContentIntent(openAppIntent(context, null))
                .setAutoCancel(true)
                .build(),
        )
    }

    companion object {
        /** The tag of the notification posted after a restart on Android 15+. */
        const val NOTIFICATION_TAG = "peerns.boot"
    }
}
