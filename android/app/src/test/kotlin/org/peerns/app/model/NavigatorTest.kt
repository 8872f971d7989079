package org.peerns.app.model

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import kotlinx.coroutines.ExperimentalCoroutinesApi
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.test.UnconfinedTestDispatcher
import kotlinx.coroutines.test.runTest
import org.junit.Test

class NavigatorTest {
    @Test
    fun backStackStartsAtHomeAndNeverLosesIt() {
        val nav = Navigator()
        nav.open(Screen.Contacts)
        nav.open(Screen.Contacts)
        nav.open(Screen.Chat("ab"))
        assertEquals(listOf(Screen.Home, Screen.Contacts, Screen.Chat("ab")), nav.screens.value)
        assertTrue(nav.back())
        assertTrue(nav.back())
        assertFalse(nav.back())
        assertEquals(Screen.Home, nav.current)
    }

    @Test
    fun theStackIsSavedAndRestoredWithoutItsCalls() {
        val nav = Navigator()
        listOf(Screen.Contacts, Screen.Chat("ab"), Screen.Call, Screen.Groups, Screen.GroupChat("g"), Screen.GroupCall("g"))
            .forEach(nav::open)
        val saved = nav.saved()
        val restored = Navigator()
        restored.restore(saved + "Unknown")
        assertEquals(
            listOf(Screen.Home, Screen.Contacts, Screen.Chat("ab"), Screen.Groups, Screen.GroupChat("g")),
            restored.screens.value,
        )
        // Only a call was above the home screen: the home screen alone.
        Navigator().apply { open(Screen.Call) }.saved().let(restored::restore)
        assertEquals(listOf(Screen.Home), restored.screens.value)
    }

    @OptIn(ExperimentalCoroutinesApi::class)
    @Test
    fun notificationTapsOpenTheirChatTheRequestsOrTheCall() = runTest {
        val nav = Navigator()
        val seen = mutableListOf<Screen>()
        backgroundScope.launch(UnconfinedTestDispatcher(testScheduler)) { nav.currentFlow().toList(seen) }
        nav.open(Screen.Settings)
        nav.route(conversation = "f1", category = "MESSAGE")
        assertEquals(listOf(Screen.Home, Screen.Chat("f1")), nav.screens.value)
        nav.route(conversation = null, category = "CONTACT_REQUEST")
        assertEquals(listOf(Screen.Home, Screen.Contacts), nav.screens.value)
        // The core names the requester as the request's conversation: still the contacts.
        nav.route(conversation = "f2", category = "CONTACT_REQUEST")
        assertEquals(listOf(Screen.Home, Screen.Contacts), nav.screens.value)
        nav.route(conversation = "f3", category = "MONITOR_ALERT")
        assertEquals(listOf(Screen.Home, Screen.Monitor), nav.screens.value)
        nav.route(conversation = "f2", category = "CONTACT_REQUEST")
        nav.route(conversation = null, category = null)
        assertEquals(Screen.Contacts, nav.current)
        nav.route(conversation = "f1", category = "INCOMING_CALL")
        assertEquals(listOf(Screen.Home, Screen.Call), nav.screens.value)
        nav.route(conversation = "g1", category = "GROUP_MESSAGE")
        assertEquals(listOf(Screen.Home, Screen.Groups, Screen.GroupChat("g1")), nav.screens.value)
        assertEquals(
            listOf(
                Screen.Home,
                Screen.Settings,
                Screen.Chat("f1"),
                Screen.Contacts,
                Screen.Monitor,
                Screen.Contacts,
                Screen.Call,
                Screen.GroupChat("g1"),
            ),
            seen,
        )
    }
}
