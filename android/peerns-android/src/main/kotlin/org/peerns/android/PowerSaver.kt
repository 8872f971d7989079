package org.peerns.android

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.content.IntentFilter
import android.os.Build
import android.os.PowerManager
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow

/**
 * Follows the system's battery saver: [on] is `PowerManager.isPowerSaveMode`, read at creation
 * and again on each `ACTION_POWER_SAVE_MODE_CHANGED` (a system broadcast, delivered on the main
 * thread; it needs no permission). [close] stops following. What the app does while it is on:
 * android/README.md ("Battery saver").
 */
class PowerSaver(context: Context) : AutoCloseable {
    private val context = context.applicationContext
    private val manager = context.getSystemService(PowerManager::class.java)
    private val mutableOn = MutableStateFlow(manager.isPowerSaveMode)

    /** Whether battery saver is on now. */
    val on: StateFlow<Boolean> = mutableOn.asStateFlow()

    private val receiver = object : BroadcastReceiver() {
        override fun onReceive(context: Context, intent: Intent) {
            mutableOn.value = manager.isPowerSaveMode
        }
    }

    init {
        val filter = IntentFilter(PowerManager.ACTION_POWER_SAVE_MODE_CHANGED)
        // Not exported: the system's broadcasts still arrive, other apps' cannot.
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            this.context.registerReceiver(receiver, filter, Context.RECEIVER_NOT_EXPORTED)
        } else {
            this.context.registerReceiver(receiver, filter)
        }
    }

    override fun close() = context.unregisterReceiver(receiver)
}
