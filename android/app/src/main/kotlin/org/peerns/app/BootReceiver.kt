package org.peerns.app

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.os.Build
import org.peerns.android.notifyOffline

/**
 * Brings PeerNS back online after the phone restarts or the app is updated (which ends its
 * process), for users who turned it on in the settings (the receiver is disabled otherwise:
 * [AppSettings.startAtBoot]).
 *
 * Up to Android 14 it starts the node's service. From Android 15 a boot receiver may not start
 * a dataSync foreground service, so it posts a notification whose tap opens the app (which
 * starts the service); after an update too, alike.
 */
class BootReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        val why = when (intent.action) {
            Intent.ACTION_BOOT_COMPLETED -> "The phone restarted."
            Intent.ACTION_MY_PACKAGE_REPLACED -> "PeerNS was updated."
            else -> return
        }
        if (!AppSettings(context).startAtBoot) return
        if (Build.VERSION.SDK_INT < Build.VERSION_CODES.VANILLA_ICE_CREAM) {
            context.startForegroundService(Intent(context, AppService::class.java))
            return
        }
        notifyOffline(context, why)
    }
}
