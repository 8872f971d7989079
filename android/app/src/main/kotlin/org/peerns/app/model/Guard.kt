package org.peerns.app.model

import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.update
import org.peerns.ffi.PeernsException

/**
 * Runs [block]; a [PeernsException] or [IllegalArgumentException] becomes the state's error
 * through [withError]. True when it succeeded.
 */
internal suspend fun <S> MutableStateFlow<S>.guard(withError: S.(String?) -> S, block: suspend () -> Unit): Boolean = try {
    block()
    true
} catch (e: PeernsException) {
    update { it.withError(e.message) }
    false
} catch (e: IllegalArgumentException) {
    update { it.withError(e.message) }
    false
}
