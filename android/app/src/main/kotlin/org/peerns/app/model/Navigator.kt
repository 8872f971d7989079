package org.peerns.app.model

import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.update

/** The app's screens. */
sealed interface Screen {
    /** Identity, signaling state and the way to every other screen. */
    data object Home : Screen

    /** Contacts and contact requests. */
    data object Contacts : Screen

    /** The chat with the contact [conversation] (its fingerprint). */
    data class Chat(val conversation: String) : Screen

    /** Stadium mode: people nearby. */
    data object Nearby : Screen

    /** The meeting room for everyone nearby (joined when opened). */
    data object MeetingRoom : Screen

    /** Signaling server, name, fingerprint. */
    data object Settings : Screen

    /** Our groups: create, join by link. */
    data object Groups : Screen

    /** The chat and members of group [group] (its ID). */
    data class GroupChat(val group: String) : Screen

    /** The call of group [group]. */
    data class GroupCall(val group: String) : Screen

    /** The 1:1 call: ringing, or in call. */
    data object Call : Screen

    /** The baby monitor: arm this phone, or watch one. */
    data object Monitor : Screen

    /** Backup of folders into another device. */
    data object Backup : Screen
}

/** The back stack of screens; [Screen.Home] is always at its bottom. Pure Kotlin. */
class Navigator {
    private val stack = MutableStateFlow<List<Screen>>(listOf(Screen.Home))

    /** The whole stack, bottom first. */
    val screens: StateFlow<List<Screen>> = stack.asStateFlow()

    /** The screen on top. */
    val current: Screen get() = stack.value.last()

    /** Opens [screen] on top, unless it is already on top. */
    fun open(screen: Screen) = stack.update { if (it.last() == screen) it else it + screen }

    /** Closes the top screen; false at [Screen.Home] (the activity then finishes). */
    fun back(): Boolean {
        if (stack.value.size == 1) return false
        stack.update { it.dropLast(1) }
        return true
    }

    /**
     * A notification was tapped: an incoming call opens the call screen, a message its chat
     * above the home screen (a group message the group's chat above the groups), a contact
     * request the contacts (where it is accepted; the core names the requester as its
     * conversation, whose chat would have no Accept), a baby monitor's alert the monitor's
     * screen. Anything else leaves the screens as they are.
     */
    fun route(conversation: String?, category: String?) {
        when {
            category == INCOMING_CALL -> stack.value = listOf(Screen.Home, Screen.Call)
            category == CONTACT_REQUEST -> stack.value = listOf(Screen.Home, Screen.Contacts)
            // The baby monitor's screen, where its stream is watched.
            category == MONITOR_ALERT -> stack.value = listOf(Screen.Home, Screen.Monitor)
            category == GROUP_MESSAGE && conversation != null ->
                stack.value = listOf(Screen.Home, Screen.Groups, Screen.GroupChat(conversation))
            conversation != null -> stack.value = listOf(Screen.Home, Screen.Chat(conversation))
        }
    }

    /** The top screen as a flow. */
    fun currentFlow() = stack.map { it.last() }

    /**
     * The stack as strings, bottom first, for the activity's saved state ([restore]). Calls are
     * left out: one does not outlive the process, and one that goes on opens its screen again.
     */
    fun saved(): ArrayList<String> = ArrayList(
        stack.value.mapNotNull {
            when (it) {
                Screen.Call, is Screen.GroupCall -> null
                is Screen.Chat -> CHAT + it.conversation
                is Screen.GroupChat -> GROUP_CHAT + it.group
                else -> it.toString()
            }
        },
    )

    /** The stack [saved] returned, above [Screen.Home]; what it does not name is left out. */
    fun restore(saved: List<String>) {
        val screens = saved.mapNotNull {
            when {
                it.startsWith(CHAT) -> Screen.Chat(it.removePrefix(CHAT))
                it.startsWith(GROUP_CHAT) -> Screen.GroupChat(it.removePrefix(GROUP_CHAT))
                else -> SINGLE[it]
            }
        }
        stack.value = screens.fold(listOf<Screen>(Screen.Home)) { all, screen -> if (all.last() == screen) all else all + screen }
    }

    private companion object {
        const val CHAT = "Chat:"
        const val GROUP_CHAT = "GroupChat:"

        /** The screens without arguments that [restore] brings back, by name. */
        val SINGLE = listOf(
            Screen.Home,
            Screen.Contacts,
            Screen.Nearby,
            Screen.MeetingRoom,
            Screen.Settings,
            Screen.Groups,
            Screen.Monitor,
            Screen.Backup,
        ).associateBy { it.toString() }

        /** `NotificationCategory.CONTACT_REQUEST.name`, as the notification intent carries it. */
        const val CONTACT_REQUEST = "CONTACT_REQUEST"

        /** `NotificationCategory.INCOMING_CALL.name`. */
        const val INCOMING_CALL = "INCOMING_CALL"

        /** `NotificationCategory.GROUP_MESSAGE.name`. */
        const val GROUP_MESSAGE = "GROUP_MESSAGE"

        /** `NotificationCategory.MONITOR_ALERT.name`. */
        const val MONITOR_ALERT = "MONITOR_ALERT"
    }
}
