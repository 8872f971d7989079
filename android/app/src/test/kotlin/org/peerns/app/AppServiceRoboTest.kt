package org.peerns.app

import android.Manifest
import android.app.Application
import android.content.ComponentName
import android.content.Intent
import android.content.pm.PackageManager
import android.content.pm.ServiceInfo
import android.location.LocationManager
import android.os.Looper
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
import org.peerns.android.PeernsService
import org.peerns.android.StartProblem
import org.peerns.testing.MemoryKeyStore
import org.peerns.testing.SIGNAL_URL
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf

/** The app's service with a keystore in memory (Robolectric has no Android Keystore). */
class TestAppService : AppService() {
    override fun keyStore() = keys
    override fun keyStoreFiles() = emptyList<File>()

    companion object {
        val keys = MemoryKeyStore()
    }
}

@RunWith(RobolectricTestRunner::class)
class AppServiceRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()

    @Before
    fun loopbackSettings() {
        AppSettings(app).apply {
            signalingUrl = SIGNAL_URL
            iceServers = emptyList()
            loopbackOnly = true
        }
        TestAppService.keys.key = null
    }

    /** Runs the main looper (where the service's coroutines resume) until [done], for 30 s at most. */
    private fun <T : Any> idleUntil(done: () -> T?): T {
        val deadline = System.nanoTime() + 30_000_000_000
        while (System.nanoTime() < deadline) {
            shadowOf(Looper.getMainLooper()).idle()
            done()?.let { return it }
            Thread.sleep(50)
        }
        throw AssertionError("timed out")
    }

    private fun running(service: PeernsService) = idleUntil { service.running.value.takeIf { it } }

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
        val first = Robolectric.buildService(TestAppService::class.java).create()
        running(first.get())
        val oldFingerprint = first.get().node!!.identity().fingerprint
        // Stopped here, not only in onDestroy (which does not wait): one node per profile.
        runBlocking { first.get().node!!.stop() }
        first.destroy()

        // The keystore entry is gone (e.g. the phone's keystore was reset).
        TestAppService.keys.key = null
        val second = Robolectric.buildService(TestAppService::class.java).create()
        val service = second.get()
        val problem = idleUntil { service.problem.value }
        assertIs<StartProblem.KeyLost>(problem)
        assertEquals(null, service.node)

        // The activity, bound to that service, explains and offers a new identity.
        val binder = service.onBind(Intent(app, TestAppService::class.java))
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

        running(service)
        assertNotEquals(oldFingerprint, service.node!!.identity().fingerprint)
        val aside = app.noBackupFilesDir.listFiles()!!.single { it.name.startsWith("${AppService.PROFILE_DIR}.lost-") }
        assertTrue(File(aside, "peerns.db").isFile)
        idleUntil { texts(activity.findViewById(android.R.id.content)).takeIf { "Contacts" in it } }
        second.destroy()
    }

    @Test
    fun locationTypeOnlyWhileStadiumModeIsOn() {
        val controller = Robolectric.buildService(TestAppService::class.java).create().startCommand(0, 1)
        val service = controller.get()
        assertEquals(ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC, service.foregroundTypes)
        running(service)

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
    fun theManifestDeclaresWhatTheFeaturesUseAndNothingMore() {
        val pm = app.packageManager
        val requested = pm.getPackageInfo(app.packageName, PackageManager.GET_PERMISSIONS).requestedPermissions!!.toSet()
        val types = pm.getServiceInfo(ComponentName(app, AppService::class.java), 0).foregroundServiceType
        assertEquals(ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC or ServiceInfo.FOREGROUND_SERVICE_TYPE_LOCATION, types)
        // Each foreground type has its permission, and no permission is there without its type.
        val typePermissions = mapOf(
            ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC to Manifest.permission.FOREGROUND_SERVICE_DATA_SYNC,
            ServiceInfo.FOREGROUND_SERVICE_TYPE_LOCATION to Manifest.permission.FOREGROUND_SERVICE_LOCATION,
            ServiceInfo.FOREGROUND_SERVICE_TYPE_CAMERA to Manifest.permission.FOREGROUND_SERVICE_CAMERA,
            ServiceInfo.FOREGROUND_SERVICE_TYPE_MICROPHONE to Manifest.permission.FOREGROUND_SERVICE_MICROPHONE,
            ServiceInfo.FOREGROUND_SERVICE_TYPE_SPECIAL_USE to Manifest.permission.FOREGROUND_SERVICE_SPECIAL_USE,
        )
        for ((type, permission) in typePermissions) {
            assertEquals(types and type != 0, permission in requested, permission)
        }
        // No feature records or films yet.
        assertFalse(Manifest.permission.CAMERA in requested)
        assertFalse(Manifest.permission.RECORD_AUDIO in requested)
        // Location is requested by the one feature that uses it, which runs in the service.
        assertEquals(types and ServiceInfo.FOREGROUND_SERVICE_TYPE_LOCATION != 0, Manifest.permission.ACCESS_FINE_LOCATION in requested)
    }
}
