package org.peerns.app

import android.Manifest
import android.app.AlertDialog
import android.app.Application
import android.app.Notification
import android.app.NotificationManager
import android.content.ComponentName
import android.content.Intent
import android.content.IntentFilter
import android.content.pm.ServiceInfo
import android.location.LocationManager
import android.os.PowerManager
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.TextView
import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNotEquals
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.peerns.android.ACTION_OPEN
import org.peerns.android.NotificationChannels
import org.peerns.android.PeernsService
import org.peerns.android.StartProblem
import org.peerns.testing.MemoryKeyStore
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.shadows.ShadowAlertDialog

/** The app's service with a keystore in memory (Robolectric has no Android Keystore). */
class InMemoryKeyAppService : AppService() {
    override fun keyStore() = keys
    override fun keyStoreFiles() = emptyList<File>()

    companion object {
        val keys = MemoryKeyStore()
    }
}

/** Android 16, the compileSdk and targetSdk of the app. */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class AppServiceRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()

    @Before
    fun loopbackSettings() {
        useLoopbackNode(app)
    }

    private fun texts(view: View): List<String> = when (view) {
        is ViewGroup -> (0 until view.childCount).flatMap { texts(view.getChildAt(it)) }
        is TextView -> listOf(view.text.toString())
        else -> emptyList()
    }

    private fun button(view: View, text: String): Button? = when (view) {
        is Button -> view.takeIf { it.text == text }
        is ViewGroup -> (0 until view.childCount).firstNotNullOfOrNull { button(view.getChildAt(it), text) }
        else -> null
    }

    @Test
    fun aLostKeystoreKeyIsExplainedAndANewIdentityKeepsTheOldProfile() {
        val first = Robolectric.buildService(InMemoryKeyAppService::class.java).create()
        running(first.get())
        val oldFingerprint = first.get().node!!.identity().fingerprint
        // Stopped here, not only in onDestroy (which does not wait): one node per profile.
        runBlocking { first.get().node!!.stop() }
        first.destroy()

        // The keystore entry is gone (e.g. the phone's keystore was reset).
        InMemoryKeyAppService.keys.key = null
        val second = Robolectric.buildService(InMemoryKeyAppService::class.java).create()
        val service = second.get()
        val problem = idleUntil { service.problem.value }
        assertIs<StartProblem.KeyLost>(problem)
        assertEquals(null, service.node)

        // The activity, bound to that service, explains and offers a new identity.
        val binder = service.onBind(Intent(app, InMemoryKeyAppService::class.java))
        shadowOf(app).setComponentNameAndServiceForBindServiceForIntent(
            Intent(app, AppService::class.java),
            ComponentName(app, AppService::class.java),
            binder,
        )
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        idleUntil { true }
        val screen = activity.findViewById<View>(android.R.id.content)
        assertTrue(KeyLostView.EXPLANATION in texts(screen), texts(screen).toString())
        assertNotNull(button(screen, "Start a new identity")).performClick()
        // Asked first: contacts have to add the new identity again.
        val asked = assertNotNull(ShadowAlertDialog.getLatestAlertDialog())
        asked.getButton(AlertDialog.BUTTON_POSITIVE).performClick()

        running(service)
        assertNotEquals(oldFingerprint, service.node!!.identity().fingerprint)
        val aside = app.noBackupFilesDir.listFiles()!!.single { it.name.startsWith("${AppService.PROFILE_DIR}.lost-") }
        assertTrue(File(aside, "peerns.db").isFile)
        idleUntil { texts(activity.findViewById(android.R.id.content)).takeIf { "Contacts" in it } }
        second.destroy()
    }

    @Test
    fun theDataSyncTimeoutSaysPeernsIsOfflineUntilItRunsAgain() {
        val launcher = ComponentName(app, MainActivity::class.java)
        shadowOf(app.packageManager).addActivityIfNotPresent(launcher)
        shadowOf(app.packageManager).addIntentFilterForActivity(
            launcher,
            IntentFilter(Intent.ACTION_MAIN).apply { addCategory(Intent.CATEGORY_LAUNCHER) },
        )
        val manager = app.getSystemService(NotificationManager::class.java)
        val offline = {
            shadowOf(manager).allNotifications.filter {
                it.extras.getCharSequence(Notification.EXTRA_TITLE) ==
                    "PeerNS is offline"
            }
        }
        val first = runningService()
        // Android 15+: dataSync's time in the background ran out. It stops, and says so.
        first.get().onTimeout(1, ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC)
        assertTrue(shadowOf(first.get()).isStoppedBySelf)
        val posted = offline().single()
        assertEquals(ACTION_OPEN, shadowOf(posted.contentIntent).savedIntent.action)
        runBlocking { first.get().node!!.stop() }
        first.destroy()
        // Its tap opens the app, which starts the service: the notice goes.
        val second = runningService()
        assertEquals(emptyList(), offline())
        runBlocking { second.get().node!!.stop() }
        second.destroy()
    }

    @Test
    fun locationTypeOnlyWhileStadiumModeIsOn() {
        val controller = Robolectric.buildService(InMemoryKeyAppService::class.java).create().startCommand(0, 1)
        val service = controller.get()
        assertEquals(ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC, service.foregroundTypes)
        running(service)
        // The ongoing notification says whether peers can reach us: online once registered.
        val notifications = app.getSystemService(NotificationManager::class.java)
        fun ongoing() = shadowOf(notifications).allNotifications.firstOrNull { it.channelId == NotificationChannels.SERVICE }
        idleUntil { ongoing()?.takeIf { it.extras.getString(Notification.EXTRA_TITLE) == "PeerNS is online" } }

        assertFalse(service.startStadium(), "no location permission yet")
        assertEquals(ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC, service.foregroundTypes)

        shadowOf(app).grantPermissions(Manifest.permission.ACCESS_FINE_LOCATION, Manifest.permission.ACCESS_COARSE_LOCATION)
        assertTrue(service.startStadium())
        assertTrue(service.stadium.value)
        assertEquals(
            ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC or ServiceInfo.FOREGROUND_SERVICE_TYPE_LOCATION,
            service.foregroundTypes,
        )
        val manager = app.getSystemService(LocationManager::class.java)
        idleUntil { manager.allProviders.firstOrNull { shadowOf(manager).getLocationRequests(it).isNotEmpty() } }

        service.stopStadium()
        assertFalse(service.stadium.value)
        assertEquals(ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC, service.foregroundTypes)
        controller.destroy()
    }

    @Test
    fun stadiumModeAsksForCoarserPositionsUnderBatterySaver() {
        val power = app.getSystemService(PowerManager::class.java)
        val controller = Robolectric.buildService(InMemoryKeyAppService::class.java).create().startCommand(0, 1)
        val service = controller.get()
        running(service)
        assertFalse(service.powerSave.value)
        shadowOf(app).grantPermissions(Manifest.permission.ACCESS_FINE_LOCATION, Manifest.permission.ACCESS_COARSE_LOCATION)
        assertTrue(service.startStadium())
        val manager = app.getSystemService(LocationManager::class.java)
        val interval = {
            manager.allProviders.flatMap { shadowOf(manager).getLocationRequests(it) }.singleOrNull()?.intervalMillis
        }
        idleUntil { interval()?.takeIf { it == 10_000L } }

        // The system turns battery saver on, then off again.
        for ((on, expected) in listOf(true to 60_000L, false to 10_000L)) {
            shadowOf(power).setIsPowerSaveMode(on)
            app.sendBroadcast(Intent(PowerManager.ACTION_POWER_SAVE_MODE_CHANGED))
            idleUntil { service.powerSave.value.takeIf { it == on } }
            idleUntil { interval()?.takeIf { it == expected } }
        }
        service.stopStadium()
        controller.destroy()
    }

    @Test
    fun captureTypesOnlyWhileCapturingWithTheirPermissionsAndTheScreenOnlyWhileShared() {
        val controller = Robolectric.buildService(InMemoryKeyAppService::class.java).create().startCommand(0, 1)
        val service = controller.get()
        running(service)
        service.setCapturing(camera = true, microphone = true)
        assertEquals(ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC, service.foregroundTypes, "no permissions yet")

        shadowOf(app).grantPermissions(Manifest.permission.RECORD_AUDIO)
        service.setCapturing(camera = true, microphone = true)
        // The capture types replace dataSync (whose daily allowance would stop an overnight monitor).
        assertEquals(ServiceInfo.FOREGROUND_SERVICE_TYPE_MICROPHONE, service.foregroundTypes)

        shadowOf(app).grantPermissions(Manifest.permission.CAMERA)
        service.setCapturing(camera = true, microphone = true)
        assertEquals(
            ServiceInfo.FOREGROUND_SERVICE_TYPE_CAMERA or ServiceInfo.FOREGROUND_SERVICE_TYPE_MICROPHONE,
            service.foregroundTypes,
        )
        // The screen shared in the call: mediaProjection as well, while it is.
        service.setScreenShared(true)
        assertEquals(
            ServiceInfo.FOREGROUND_SERVICE_TYPE_CAMERA or ServiceInfo.FOREGROUND_SERVICE_TYPE_MICROPHONE or
                ServiceInfo.FOREGROUND_SERVICE_TYPE_MEDIA_PROJECTION,
            service.foregroundTypes,
        )
        service.setCapturing(camera = false, microphone = false)
        assertEquals(ServiceInfo.FOREGROUND_SERVICE_TYPE_MEDIA_PROJECTION, service.foregroundTypes)
        service.setScreenShared(false)
        assertEquals(ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC, service.foregroundTypes)
        controller.destroy()
    }
}
