package org.peerns.app

import android.app.Activity
import android.app.Application
import android.content.ComponentName
import android.content.Intent
import android.content.IntentFilter
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import kotlin.test.assertEquals
import kotlinx.coroutines.runBlocking
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.peerns.app.model.Screen
import org.peerns.ffi.CallKinds
import org.peerns.testing.makeContacts
import org.peerns.testing.startedNode
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config

/**
 * A 1:1 call is never left connected without its screen: answered out of sight (a headset), or
 * its activity destroyed by the system, the app opens on it again; closed by the user (swiped
 * from the recent apps), the call ends.
 */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class CallReturnRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()

    @Before
    fun setUp() {
        val component = ComponentName(app, MainActivity::class.java)
        shadowOf(app.packageManager).addActivityIfNotPresent(component)
        shadowOf(app.packageManager).addIntentFilterForActivity(
            component,
            IntentFilter(Intent.ACTION_MAIN).apply { addCategory(Intent.CATEGORY_LAUNCHER) },
        )
        useLoopbackNode(app)
    }

    private fun button(activity: Activity, label: String): Button? {
        fun find(v: View): Button? = when {
            v is Button && v.text == label -> v
            v is ViewGroup -> (0 until v.childCount).firstNotNullOfOrNull { find(v.getChildAt(it)) }
            else -> null
        }
        return find(activity.window.decorView)
    }

    @Test
    fun aCallWithoutItsScreenGetsItBackAndClosingTheAppEndsIt() {
        val controller = runningService()
        val service = controller.get()
        val ann = service.node!!
        val bob = runBlocking { startedNode("bob") }
        try {
            runBlocking { makeContacts(ann, bob) }
            val annFp = ann.identity().fingerprint
            val bobFp = bob.identity().fingerprint
            bindsTo(app, service)

            // Bob calls; Ann answers with no screen of the app shown (a headset's button).
            val call = runBlocking { bob.startCall(annFp, CallKinds(audio = true, video = false, screen = false)) }
            idleUntil { ann.activeCall()?.takeIf { it.call == call && it.status.state == "ringing" } }
            assertEquals(true, service.answerCall(bobFp))
            idleUntil { bob.activeCall()?.takeIf { it.call == call && it.status.state == "connected" } }

            // The app opened from the launcher shows the call, where its sound starts.
            val first = Robolectric.buildActivity(MainActivity::class.java).setup()
            idleUntil { button(first.get(), "Hang up") }
            assertEquals(Screen.Call, first.get().navigator.current)

            // The system destroys the activity (not the user): the call goes on, and the next
            // activity opens on it.
            first.pause().stop().destroy()
            assertEquals("connected", bob.activeCall()?.status?.state)
            val second = Robolectric.buildActivity(MainActivity::class.java).setup()
            val activity = second.get()
            idleUntil { button(activity, "Hang up") }
            assertEquals(Screen.Call, activity.navigator.current)

            // The user closes the app (swiped from the recent apps: it finishes): the call ends.
            activity.finish()
            second.pause().stop().destroy()
            idleUntil { (bob.activeCall() == null).takeIf { it } }
            idleUntil { runBlocking { bob.callLog(annFp, 5u) }.firstOrNull { it.call == call } }
        } finally {
            runBlocking { bob.stop() }
            runBlocking { ann.stop() }
            controller.destroy()
        }
    }
}
