package org.peerns.app

import android.Manifest
import android.app.Application
import android.app.NotificationManager
import android.content.ComponentName
import android.content.Intent
import android.content.IntentFilter
import kotlin.test.assertEquals
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.peerns.android.ACTION_OPEN
import org.peerns.android.AndroidNotifier
import org.peerns.android.EXTRA_CONVERSATION
import org.peerns.android.NotificationChannels
import org.peerns.app.model.Screen
import org.peerns.ffi.NotificationCategory
import org.peerns.ffi.PeernsNotification
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config

/** Android 16, the compileSdk and targetSdk of the app. */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class NotificationRoutingRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()
    private val fpA = "a".repeat(64)

    /** The launcher entry the app's manifest declares (the Gradle build merges it in; here it is added). */
    @Before
    fun launcher() {
        val component = ComponentName(app, MainActivity::class.java)
        shadowOf(app.packageManager).addActivityIfNotPresent(component)
        shadowOf(app.packageManager).addIntentFilterForActivity(
            component,
            IntentFilter(Intent.ACTION_MAIN).apply { addCategory(Intent.CATEGORY_LAUNCHER) },
        )
    }
    private val fpB = "b".repeat(64)

    private fun message(conversation: String) = PeernsNotification(NotificationCategory.MESSAGE, "bob", "hi", conversation)

    /** What tapping the notification starts. */
    private fun tap(notification: PeernsNotification): Intent {
        val built = AndroidNotifier(app).build(notification)
        return assertNotNull(shadowOf(built.contentIntent).savedIntent)
    }

    @Test
    fun messageNotificationsCarryTheirConversation() {
        val built = AndroidNotifier(app).build(message(fpA))
        assertEquals(NotificationChannels.of(NotificationCategory.MESSAGE), built.channelId)
        assertEquals(android.app.Notification.CATEGORY_MESSAGE, built.category)
        val a = tap(message(fpA))
        val b = tap(message(fpB))
        assertEquals(ACTION_OPEN, a.action)
        assertEquals(MainActivity::class.java.name, a.component?.className)
        assertTrue(a.flags and Intent.FLAG_ACTIVITY_SINGLE_TOP != 0 && a.flags and Intent.FLAG_ACTIVITY_CLEAR_TOP != 0)
        // Each conversation keeps its own PendingIntent: the second did not overwrite the first.
        assertEquals(fpA, shadowOf(AndroidNotifier(app).build(message(fpA)).contentIntent).savedIntent.getStringExtra(EXTRA_CONVERSATION))
        assertEquals(fpB, b.getStringExtra(EXTRA_CONVERSATION))
    }

    @Test
    fun aTapOpensTheChatAlsoWhenTheAppRuns() {
        val controller = Robolectric.buildActivity(MainActivity::class.java, tap(message(fpA))).create()
        val activity = controller.get()
        assertEquals(Screen.Chat(fpA), activity.navigator.current)
        controller.start().resume()
        controller.newIntent(tap(message(fpB)))
        assertEquals(listOf(Screen.Home, Screen.Chat(fpB)), activity.navigator.screens.value)
        controller.newIntent(tap(PeernsNotification(NotificationCategory.CONTACT_REQUEST, "ann", "wants to add you", fpB)))
        // As the core sends it: the requester named as the conversation, the contacts opened.
        assertEquals(listOf(Screen.Home, Screen.Contacts), activity.navigator.screens.value)
        controller.pause().stop().destroy()
    }

    @Test
    fun theScreensComeBackWhenTheSystemMakesTheActivityAnew() {
        val controller = Robolectric.buildActivity(MainActivity::class.java).setup()
        controller.get().navigator.apply {
            open(Screen.Groups)
            open(Screen.GroupChat("g1"))
            open(Screen.Chat(fpA))
            open(Screen.Call)
        }
        // Saved, destroyed and created again with its saved state, as after the process was
        // ended in the background. The call is not brought back (it ended with the process).
        controller.recreate()
        assertEquals(
            listOf(Screen.Home, Screen.Groups, Screen.GroupChat("g1"), Screen.Chat(fpA)),
            controller.get().navigator.screens.value,
        )
        controller.pause().stop().destroy()
    }

    @Test
    fun nothingIsPostedWhileNotificationsAreOff() {
        val manager = app.getSystemService(NotificationManager::class.java)
        shadowOf(manager).setNotificationsEnabled(false)
        AndroidNotifier(app).notify(message(fpA))
        assertEquals(0, shadowOf(manager).allNotifications.size)
        shadowOf(manager).setNotificationsEnabled(true)
        AndroidNotifier(app).notify(message(fpA))
        assertEquals(1, shadowOf(manager).allNotifications.size)
    }

    @Test
    fun locationIsAskedOnlyWhenStadiumModeIsTurnedOn() {
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        val asked = shadowOf(activity).lastRequestedPermission
        assertTrue(asked == null || asked.requestedPermissions.none { it.contains("LOCATION") })
        activity.setStadium(true)
        val stadium = assertNotNull(shadowOf(activity).lastRequestedPermission)
        assertEquals(
            setOf(Manifest.permission.ACCESS_FINE_LOCATION, Manifest.permission.ACCESS_COARSE_LOCATION),
            stadium.requestedPermissions.toSet(),
        )
    }
}
