package org.peerns.app

import android.content.ComponentName
import android.content.Context
import android.content.pm.PackageManager
import org.peerns.app.model.SettingsStore

/** The app's settings, in its private SharedPreferences. */
class AppSettings(private val context: Context) : SettingsStore {
    private val prefs = context.getSharedPreferences("peerns", Context.MODE_PRIVATE)

    /** Come back online after a restart ([BootReceiver], enabled only while this is on). */
    override var startAtBoot: Boolean
        get() = prefs.getBoolean(KEY_BOOT, false)
        set(value) {
            prefs.edit().putBoolean(KEY_BOOT, value).apply()
            context.packageManager.setComponentEnabledSetting(
                ComponentName(context, BootReceiver::class.java),
                if (value) PackageManager.COMPONENT_ENABLED_STATE_ENABLED else PackageManager.COMPONENT_ENABLED_STATE_DISABLED,
                PackageManager.DONT_KILL_APP,
            )
        }

    override var signalingUrl: String
        get() = prefs.getString(KEY_SIGNALING, null) ?: DEFAULT_SIGNALING
        set(value) = prefs.edit().putString(KEY_SIGNALING, value).apply()

    /** STUN/TURN URLs; not on screen. */
    var iceServers: List<String>
        get() = prefs.getString(KEY_ICE, null)?.split(' ')?.filter(String::isNotEmpty) ?: DEFAULT_ICE
        set(value) = prefs.edit().putString(KEY_ICE, value.joinToString(" ")).apply()

    /** Loopback-only WebRTC (tests, local demos); not on screen. */
    var loopbackOnly: Boolean
        get() = prefs.getBoolean(KEY_LOOPBACK, false)
        set(value) = prefs.edit().putBoolean(KEY_LOOPBACK, value).apply()

    /** The location was refused and Android asks no more (remembered across app starts, whose permission flags read as before any ask; forgotten once allowed). */
    var locationRefusedForGood: Boolean
        get() = prefs.getBoolean(KEY_LOCATION_REFUSED, false)
        set(value) = prefs.edit().putBoolean(KEY_LOCATION_REFUSED, value).apply()

    /** The backup's folders, as [AppBackupFolders] keeps them. */
    var backupFolders: List<String>
        get() = prefs.getString(KEY_BACKUP_FOLDERS, null)?.split('\n')?.filter(String::isNotEmpty) ?: emptyList()
        set(value) = prefs.edit().putString(KEY_BACKUP_FOLDERS, value.joinToString("\n")).apply()

    private companion object {
        const val KEY_SIGNALING = "signaling_url"
        const val KEY_ICE = "ice_servers"
        const val KEY_LOOPBACK = "loopback_only"
        const val KEY_BOOT = "start_at_boot"
        const val KEY_LOCATION_REFUSED = "location_refused_for_good"
        const val KEY_BACKUP_FOLDERS = "backup_folders"
        const val DEFAULT_SIGNALING = "wss://0.peerjs.com:443/?key=peerjs"
        val DEFAULT_ICE = listOf("stun:stun.l.google.com:19302")
    }
}
