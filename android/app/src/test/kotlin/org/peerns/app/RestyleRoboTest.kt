package org.peerns.app

import android.app.Application
import android.content.ComponentName
import android.content.Intent
import android.content.res.Configuration
import android.widget.EditText
import kotlin.test.assertEquals
import kotlin.test.assertNotSame
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.peerns.app.model.Screen
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config

/** A new text size rebuilds the shown screen on the real framework and keeps what was typed into it. */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class RestyleRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()

    @Before
    fun setUp() = useLoopbackNode(app)

    @Test
    fun aRestyledScreenKeepsItsTypedText() {
        val controller = Robolectric.buildService(InMemoryKeyAppService::class.java).create().startCommand(0, 1)
        val service = controller.get()
        running(service)
        shadowOf(app).setComponentNameAndServiceForBindServiceForIntent(
            Intent(app, AppService::class.java),
            ComponentName(app, AppService::class.java),
            service.onBind(Intent(app, InMemoryKeyAppService::class.java)),
        )
        val shown = Robolectric.buildActivity(MainActivity::class.java).setup()
        try {
            val activity = shown.get()
            activity.navigator.open(Screen.Chat("d".repeat(64)))
            val before = idleUntil { activity.window.decorView.editTexts().firstOrNull() }
            before.setText("a draft, half written")

            activity.onConfigurationChanged(Configuration(activity.resources.configuration).apply { fontScale *= 1.3f })
            val after = idleUntil { activity.window.decorView.editTexts().firstOrNull() }
            assertNotSame<EditText>(before, after, "the screen was not built again")
            assertEquals("a draft, half written", after.text.toString())
            assertEquals(Screen.Chat("d".repeat(64)), activity.navigator.current)
        } finally {
            shown.pause().stop().destroy()
            controller.destroy()
        }
    }
}
