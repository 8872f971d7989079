package org.peerns.app

import android.Manifest
import android.app.Activity
import android.app.Application
import android.app.Notification
import android.app.NotificationManager
import android.app.PendingIntent
import android.app.RemoteInput
import android.content.ComponentName
import android.content.Intent
import android.content.IntentFilter
import android.content.pm.PackageManager
import android.media.AudioAttributes
import android.os.Bundle
import android.provider.Settings
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.TextView
import kotlin.test.assertEquals
import kotlin.test.assertNotEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNotSame
import kotlin.test.assertSame
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.peerns.android.ACTION_ANSWER
import org.peerns.android.ACTION_DECLINE
import org.peerns.android.ACTION_OPEN
import org.peerns.android.ACTION_REPLY
import org.peerns.android.AndroidNotifier
import org.peerns.android.EXTRA_CATEGORY
import org.peerns.android.EXTRA_CONVERSATION
import org.peerns.android.KEY_REPLY
import org.peerns.app.model.Screen
import org.peerns.ffi.CallKinds
import org.peerns.ffi.NotificationCategory
import org.peerns.ffi.PeernsNotification
import org.peerns.testing.makeContacts
import org.peerns.testing.startedNode
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config

/** Android 16, the compileSdk and targetSdk of the app. */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class NotificationActionsRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()
    private val manager get() = app.getSystemService(NotificationManager::class.java)
    private val fp = "c".repeat(64)

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

    private fun notifier() = AndroidNotifier(app, actions = InMemoryKeyAppService::class.java)

    /** The shown button labelled [label] in [activity], if any. */
    private fun button(activity: Activity, label: String): Button? {
        fun find(v: View): Button? = when {
            v is Button && v.text == label -> v
            v is ViewGroup -> (0 until v.childCount).firstNotNullOfOrNull { find(v.getChildAt(it)) }
            else -> null
        }
        return find(activity.window.decorView)
    }

    /** The shown text view that says [text] in [activity], if any. */
    private fun text(activity: Activity, text: String): TextView? {
        fun find(v: View): TextView? = when {
            v is TextView && v !is Button && v.text.toString() == text && v.isShown -> v
            v is ViewGroup -> (0 until v.childCount).firstNotNullOfOrNull { find(v.getChildAt(it)) }
            else -> null
        }
        return find(activity.window.decorView)
    }

    private fun template(n: Notification) = n.extras.getString(Notification.EXTRA_TEMPLATE)

    private fun pending(n: Notification, key: String): Intent =
        shadowOf(assertNotNull(n.extras.getParcelable(key, PendingIntent::class.java))).savedIntent

    @Test
    fun messagesUseMessagingStyleWithADirectReply() {
        val notifier = notifier()
        notifier.build(PeernsNotification(NotificationCategory.MESSAGE, "bob", "hi", fp))
        val n = notifier.build(PeernsNotification(NotificationCategory.MESSAGE, "bob", "are you there?", fp))
        assertEquals(Notification.MessagingStyle::class.java.name, template(n))
        val lines = n.extras.getParcelableArray(Notification.EXTRA_MESSAGES, Bundle::class.java)!!.map {
            it.getCharSequence("text").toString()
        }
        assertEquals(listOf("hi", "are you there?"), lines)
        val reply = n.actions.single()
        assertEquals(Notification.Action.SEMANTIC_ACTION_REPLY, reply.semanticAction)
        assertEquals(KEY_REPLY, reply.remoteInputs.single().resultKey)
        val intent = shadowOf(reply.actionIntent).savedIntent
        assertTrue(reply.actionIntent.isService)
        assertEquals(ACTION_REPLY, intent.action)
        assertEquals(fp, intent.getStringExtra(EXTRA_CONVERSATION))
        assertEquals(InMemoryKeyAppService::class.java.name, intent.component?.className)
        // Without a service to handle actions there is nothing to reply with.
        assertEquals(0, AndroidNotifier(app).build(PeernsNotification(NotificationCategory.MESSAGE, "bob", "hi", fp)).actions?.size ?: 0)
        // A group's messages have Reply too, into the group.
        val gid = "9".repeat(32)
        val group = notifier.build(PeernsNotification(NotificationCategory.GROUP_MESSAGE, "Trip", "abcd1234: hi all", gid))
        val groupReply = shadowOf(group.actions.single().actionIntent).savedIntent
        assertEquals(ACTION_REPLY, groupReply.action)
        assertEquals(gid, groupReply.getStringExtra(EXTRA_CONVERSATION))
        assertEquals(NotificationCategory.GROUP_MESSAGE.name, groupReply.getStringExtra(org.peerns.android.EXTRA_CATEGORY))
    }

    @Test
    fun incomingCallsUseCallStyleWithAFullScreenIntent() {
        val n = notifier().build(PeernsNotification(NotificationCategory.INCOMING_CALL, "bob", "audio call", fp))
        assertEquals(Notification.CallStyle::class.java.name, template(n))
        assertEquals(Notification.CATEGORY_CALL, n.category)
        assertTrue(n.flags and Notification.FLAG_ONGOING_EVENT != 0)
        // It rings like a phone: the ringtone, repeated until the call is answered or over,
        // once however often it is posted.
        assertTrue(n.flags and Notification.FLAG_INSISTENT != 0)
        assertTrue(n.flags and Notification.FLAG_ONLY_ALERT_ONCE != 0)
        // ... and not for ever: a process killed while it rang could not remove it.
        assertEquals(AndroidNotifier.RING_NOTIFICATION_MS, n.timeoutAfter)
        val channel = app.getSystemService(NotificationManager::class.java).getNotificationChannel(n.channelId)
        assertEquals(AudioAttributes.USAGE_NOTIFICATION_RINGTONE, channel.audioAttributes.usage)
        // A message from the caller does not take over the call's full-screen intent.
        val message = notifier().build(PeernsNotification(NotificationCategory.MESSAGE, "bob", "hi", fp))
        assertNotEquals(message.contentIntent, n.fullScreenIntent)
        val fullScreen = shadowOf(assertNotNull(n.fullScreenIntent)).savedIntent
        assertEquals(NotificationCategory.INCOMING_CALL.name, fullScreen.getStringExtra(org.peerns.android.EXTRA_CATEGORY))
        val answer = pending(n, Notification.EXTRA_ANSWER_INTENT)
        assertEquals(ACTION_ANSWER, answer.action)
        assertEquals(MainActivity::class.java.name, answer.component?.className)
        val decline = pending(n, Notification.EXTRA_DECLINE_INTENT)
        assertEquals(ACTION_DECLINE, decline.action)
        assertEquals(fp, decline.getStringExtra(EXTRA_CONVERSATION))
    }

    @Test
    fun aBabyMonitorAlertIsAnAlarmThatOpensTheMonitor() {
        val n = notifier().build(
            PeernsNotification(NotificationCategory.MONITOR_ALERT, "nursery", "the baby monitor hears a sound (-12 dBFS)", fp),
        )
        assertEquals(Notification.CATEGORY_ALARM, n.category)
        val channel = app.getSystemService(NotificationManager::class.java).getNotificationChannel(n.channelId)
        // Heard at the alarm's volume, with the ringer silenced.
        assertEquals(NotificationManager.IMPORTANCE_HIGH, channel.importance)
        assertEquals(AudioAttributes.USAGE_ALARM, channel.audioAttributes.usage)
        val tap = shadowOf(assertNotNull(n.contentIntent)).savedIntent
        assertEquals(NotificationCategory.MONITOR_ALERT.name, tap.getStringExtra(org.peerns.android.EXTRA_CATEGORY))
        // The tap opens the baby monitor's screen, not a chat with the monitor.
        val shown = Robolectric.buildActivity(MainActivity::class.java, tap).create()
        assertEquals(Screen.Monitor, shown.get().navigator.current)
        shown.destroy()
    }

    @Test
    fun stoppedFromItsNotificationTheOpenAppSaysSoAndStartsItAgain() {
        val controller = runningService()
        val service = controller.get()
        val component = ComponentName(app, AppService::class.java)
        try {
            bindsTo(app, service)
            val shown = Robolectric.buildActivity(MainActivity::class.java).setup()
            val activity = shown.get()
            idleUntil { button(activity, "Contacts") }
            // The notification's Stop ends the service; Android tells the bound activity so, and
            // ends that binding for good.
            val connection = shadowOf(app).boundServiceConnections.single()
            connection.onServiceDisconnected(component)
            connection.onBindingDied(component)
            val start = idleUntil { button(activity, "Start PeerNS") }
            while (shadowOf(app).nextStartedService != null) Unit
            // Notifications were turned off meanwhile (said on the home screen below).
            shadowOf(manager).setNotificationsEnabled(false)
            start.performClick()
            // Started again, and bound anew: nothing here calls the connection back but a new
            // binding (the dead one never would), so the screens shown again prove it.
            assertEquals(AppService::class.java.name, shadowOf(app).nextStartedService?.component?.className)
            idleUntil { button(activity, "Contacts") }
            // The home screen says calls will not ring, and Allow opens the notification settings.
            assertNotNull(text(activity, "Notifications are off: calls do not ring and messages are not shown."))
            assertNotNull(button(activity, "Allow")).performClick()
            assertEquals(Settings.ACTION_APP_NOTIFICATION_SETTINGS, shadowOf(activity).nextStartedActivity?.action)
            shown.pause().stop().destroy()
        } finally {
            runBlocking { service.node?.stop() }
            controller.destroy()
        }
    }

    @Test
    fun stoppedWhileOutOfSightTheAppBindsAnewWhenItComesBack() {
        val controller = runningService()
        val service = controller.get()
        val component = ComponentName(app, AppService::class.java)
        try {
            bindsTo(app, service)
            val shown = Robolectric.buildActivity(MainActivity::class.java).setup()
            val activity = shown.get()
            idleUntil { button(activity, "Contacts") }
            // A picker is open: the activity stops but stays bound for its result.
            activity.pickFile {}
            shown.pause().stop()
            // The notification's Stop ends the service meanwhile.
            val connection = shadowOf(app).boundServiceConnections.single()
            connection.onServiceDisconnected(component)
            connection.onBindingDied(component)
            idleUntil { button(activity, "Start PeerNS") }
            while (shadowOf(app).nextStartedService != null) Unit
            // Back in the app: started and bound anew, not "PeerNS is stopped" while it runs.
            shown.start()
            assertEquals(AppService::class.java.name, shadowOf(app).nextStartedService?.component?.className)
            idleUntil { button(activity, "Contacts") }
            shown.pause().stop().destroy()
        } finally {
            runBlocking { service.node?.stop() }
            controller.destroy()
        }
    }

    @Test
    fun aDirectReplyIsSentByTheNodeAndCallsAreDeclinedAndAnswered() {
        val controller = runningService()
        val service = controller.get()
        val ann = service.node!!
        val bob = runBlocking { startedNode("bob") }
        try {
            runBlocking { makeContacts(ann, bob) }
            val annFp = ann.identity().fingerprint
            val bobFp = bob.identity().fingerprint

            // Bob writes; Ann replies from the notification.
            runBlocking { bob.sendMessage(annFp, "hi ann") }
            val posted = idleUntil { shadowOf(manager).allNotifications.firstOrNull { it.category == Notification.CATEGORY_MESSAGE } }
            val action = posted.actions.single()
            val reply = Intent(shadowOf(action.actionIntent).savedIntent)
            RemoteInput.addResultsToIntent(action.remoteInputs, reply, Bundle().apply { putCharSequence(KEY_REPLY, " on my way ") })
            service.onStartCommand(reply, 0, 2)
            idleUntil { runBlocking { bob.messages(annFp, 10u) }.firstOrNull { it.text == "on my way" } }
            val updated = idleUntil {
                shadowOf(manager).allNotifications.firstOrNull { n ->
                    n.category == Notification.CATEGORY_MESSAGE &&
                        n.extras.getParcelableArray(Notification.EXTRA_MESSAGES, Bundle::class.java)
                            ?.any { it.getCharSequence("text") == "on my way" } == true
                }
            }
            assertEquals(Notification.MessagingStyle::class.java.name, template(updated))

            // A reply to a group's notification goes into the group.
            val gid = runBlocking { ann.groupCreate("Trip") }
            val groupAction = notifier().build(
                PeernsNotification(NotificationCategory.GROUP_MESSAGE, "Trip", "bob: hi", gid),
            ).actions.single()
            val toGroup = Intent(shadowOf(groupAction.actionIntent).savedIntent)
            RemoteInput.addResultsToIntent(
                groupAction.remoteInputs,
                toGroup,
                Bundle().apply {
                    putCharSequence(KEY_REPLY, "see you there")
                },
            )
            service.onStartCommand(toGroup, 0, 5)
            idleUntil { runBlocking { ann.groupHistory(gid, null, 10u) }.messages.firstOrNull { it.text == "see you there" } }
            // One that cannot be sent (to someone who is not a contact) says so, in place of the
            // reply's spinner, with Reply again.
            val stranger = "e".repeat(64)
            val lost = Intent(shadowOf(action.actionIntent).savedIntent).putExtra(EXTRA_CONVERSATION, stranger)
            RemoteInput.addResultsToIntent(action.remoteInputs, lost, Bundle().apply { putCharSequence(KEY_REPLY, "hello?") })
            service.onStartCommand(lost, 0, 6)
            val notSent = idleUntil {
                shadowOf(manager).allNotifications.firstOrNull { it.extras.getString(Notification.EXTRA_TITLE) == "Reply not sent" }
            }
            assertTrue(notSent.extras.getCharSequence(Notification.EXTRA_TEXT).toString().startsWith("\u201Chello?\u201D: "))
            assertEquals(Notification.Action.SEMANTIC_ACTION_REPLY, notSent.actions.single().semanticAction)

            // Bob calls; Ann declines from the notification.
            val audio = CallKinds(audio = true, video = false, screen = false)
            val first = runBlocking { bob.startCall(annFp, audio) }
            val ringing = idleUntil { shadowOf(manager).allNotifications.firstOrNull { it.category == Notification.CATEGORY_CALL } }
            service.onStartCommand(pending(ringing, Notification.EXTRA_DECLINE_INTENT), 0, 3)
            idleUntil { runBlocking { bob.callLog(null, 5u) }.firstOrNull { it.call == first && it.outcome == "declined" } }
            idleUntil { shadowOf(manager).allNotifications.none { it.category == Notification.CATEGORY_CALL }.takeIf { it } }

            // Bob calls again, with video; Ann answers: the app opens on the call and the node
            // accepts it as offered, with her camera too.
            val second = runBlocking { bob.startCall(annFp, CallKinds(audio = true, video = true, screen = true)) }
            val again = idleUntil { shadowOf(manager).allNotifications.firstOrNull { it.category == Notification.CATEGORY_CALL } }
            val answer = pending(again, Notification.EXTRA_ANSWER_INTENT)
            bindsTo(app, service)
            val shown = Robolectric.buildActivity(MainActivity::class.java, answer).setup()
            val activity = shown.get()
            assertEquals(Screen.Call, activity.navigator.current)
            val connected = idleUntil { bob.activeCall()?.takeIf { it.call == second && it.status.state == "connected" } }
            assertTrue(connected.calleeKinds.video && connected.calleeKinds.screen, "answered without video: $connected")
            idleUntil { button(activity, "Hang up") }
            // The microphone refused: the call screen offers it again, asks once more, and once
            // refused twice (Android asks no more then) opens the app's settings page. (Robolectric
            // answers each request at once as interrupted, empty: that refuses nothing but shows the
            // button; the refusals are the ones dispatched here.)
            val microphone = Manifest.permission.RECORD_AUDIO
            val asked = idleUntil { shadowOf(activity).lastRequestedPermission?.takeIf { microphone in it.requestedPermissions } }
            val denied = IntArray(asked.requestedPermissions.size) { PackageManager.PERMISSION_DENIED }
            activity.onRequestPermissionsResult(asked.requestCode, asked.requestedPermissions, denied)
            val allow = idleUntil { button(activity, "Allow the microphone")?.takeIf { it.visibility == View.VISIBLE } }
            allow.performClick()
            val askedAgain = assertNotNull(shadowOf(activity).lastRequestedPermission)
            assertNotSame(asked, askedAgain, "not asked again")
            activity.onRequestPermissionsResult(askedAgain.requestCode, askedAgain.requestedPermissions, denied)
            idleUntil { allow.takeIf { it.visibility == View.VISIBLE } }
            allow.performClick()
            assertEquals(Settings.ACTION_APPLICATION_DETAILS_SETTINGS, shadowOf(activity).nextStartedActivity?.action)
            assertSame(askedAgain, shadowOf(activity).lastRequestedPermission, "asked where Android asks no more")
            assertEquals(View.VISIBLE, allow.visibility)
            // The phone's screen goes off (the activity stops): the call's screen stays, with
            // its events and media, and is there when the app comes back.
            shown.stop()
            assertNotNull(button(activity, "Hang up"), "the call screen was hidden when the activity stopped")
            shown.start()
            assertEquals(Screen.Call, activity.navigator.current)
            val hangUp = assertNotNull(button(activity, "Hang up"))
            // A message's notification tapped during the call leaves the call's screen there
            // (its sound would stop with it); Back, once the call is over, opens that chat.
            shown.newIntent(
                Intent(app, MainActivity::class.java).setAction(ACTION_OPEN)
                    .putExtra(EXTRA_CONVERSATION, bobFp).putExtra(EXTRA_CATEGORY, NotificationCategory.MESSAGE.name),
            )
            assertEquals(Screen.Call, activity.navigator.current)
            assertSame(hangUp, button(activity, "Hang up"))
            bob.hangUp(second)
            idleUntil { runBlocking { ann.callLog(bobFp, 5u) }.firstOrNull { it.call == second && it.outcome == "completed" } }
            idleUntil { (hangUp.parent as View).takeIf { it.visibility == View.GONE } }
            @Suppress("DEPRECATION")
            activity.onBackPressed()
            idleUntil { activity.navigator.current.takeIf { it == Screen.Chat(bobFp) } }
        } finally {
            runBlocking { bob.stop() }
            runBlocking { ann.stop() }
            controller.destroy()
        }
    }
}
