package org.peerns.app

import android.app.Application
import android.app.Notification
import android.app.NotificationManager
import android.content.ComponentName
import android.content.Intent
import android.content.IntentFilter
import android.content.pm.PackageManager
import kotlin.test.assertEquals
import kotlin.test.assertNull
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.peerns.android.ACTION_OPEN
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config

/** Android 16: a boot receiver may not start a dataSync foreground service there. */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class BootReceiverRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()
    private val manager get() = app.getSystemService(NotificationManager::class.java)
    private val receiver = ComponentName(app, BootReceiver::class.java)

    @Before
    fun launcher() {
        val component = ComponentName(app, MainActivity::class.java)
        shadowOf(app.packageManager).addActivityIfNotPresent(component)
        shadowOf(app.packageManager).addIntentFilterForActivity(
            component,
            IntentFilter(Intent.ACTION_MAIN).apply { addCategory(Intent.CATEGORY_LAUNCHER) },
        )
    }

    private fun boot() = BootReceiver().onReceive(app, Intent(Intent.ACTION_BOOT_COMPLETED))

    @Test
    fun onlyUsersWhoOptedInAreBroughtBackAfterARestartOrAnUpdate() {
        boot()
        assertEquals(0, shadowOf(manager).allNotifications.size)
        assertNull(shadowOf(app).nextStartedService)

        AppSettings(app).startAtBoot = true
        assertEquals(PackageManager.COMPONENT_ENABLED_STATE_ENABLED, app.packageManager.getComponentEnabledSetting(receiver))
        BootReceiver().onReceive(app, Intent(Intent.ACTION_LOCKED_BOOT_COMPLETED))
        assertEquals(0, shadowOf(manager).allNotifications.size)
        boot()
        // No foreground service from a boot receiver on Android 15+: a notification asks instead.
        assertNull(shadowOf(app).nextStartedService)
        val posted = shadowOf(manager).allNotifications.single()
        assertEquals(ACTION_OPEN, shadowOf(posted.contentIntent).savedIntent.action)

        // After an update (which ends the process) alike.
        manager.cancelAll()
        BootReceiver().onReceive(app, Intent(Intent.ACTION_MY_PACKAGE_REPLACED))
        assertNull(shadowOf(app).nextStartedService)
        val updated = shadowOf(manager).allNotifications.single()
        assertEquals(ACTION_OPEN, shadowOf(updated.contentIntent).savedIntent.action)
        assertEquals("PeerNS was updated. Tap to be reachable again.", updated.extras.getCharSequence(Notification.EXTRA_TEXT).toString())

        AppSettings(app).startAtBoot = false
        manager.cancelAll()
        BootReceiver().onReceive(app, Intent(Intent.ACTION_MY_PACKAGE_REPLACED))
        assertEquals(0, shadowOf(manager).allNotifications.size)
        assertEquals(PackageManager.COMPONENT_ENABLED_STATE_DISABLED, app.packageManager.getComponentEnabledSetting(receiver))
    }
}
