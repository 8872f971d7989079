package org.peerns.app

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.os.Build
import org.peerns.android.notifyOffline

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
        notifyOffline(context, "The phone restarted.")
    }
}
