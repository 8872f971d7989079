package org.peerns.app.model

import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.map

/**
 * The system's battery saver as the view models see it: a [StateFlow] that is true while it is
 * on (`PowerSaver.on` of peerns-android on a phone, a `MutableStateFlow` in the tests), and what
 * the screens say about it. Pure Kotlin.
 */
object BatterySaver {
    /** Battery saver never on: for view models made without one. */
    val OFF: StateFlow<Boolean> = MutableStateFlow(false).asStateFlow()

    const val NEARBY = "Battery saver: your position is updated about once a minute and less precisely, and this list less often."
    const val CALL = "Battery saver: calls start with your camera off (audio only); you can still turn it on."
    const val BACKUP = "Battery saver: a backup waits until it is off (or Start now); a running one pauses until then (or Continue now)."

    /** [text] while [on] is true, null otherwise: a screen's notice. */
    fun notice(on: Flow<Boolean>, text: String): Flow<String?> = on.map { if (it) text else null }
}
