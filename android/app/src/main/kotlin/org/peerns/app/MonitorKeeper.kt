package org.peerns.app

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.flow.catch
import kotlinx.coroutines.flow.distinctUntilChanged
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.launch
import org.peerns.Peerns
import org.peerns.android.PeernsService
import org.peerns.app.model.CallMedia
import org.peerns.app.model.MonitorViewModel
import org.peerns.app.model.SoundLevels
import org.peerns.ffi.PeernsException

/**
 * The baby monitor for as long as the service's [node] runs, not only while its screen is shown:
 * an armed phone lies with its screen off, and must still listen for the sound alert and send its
 * camera and microphone into a watcher's call. The service keeps it (`AppService.monitor`); the
 * monitor screen shows [model] and arms it while visible, which is when Android lets the
 * service take the camera and microphone foreground types: they are claimed while armed
 * ([PeernsService.setCapturing] for [CAPTURE_OWNER]) and let go when disarmed, whatever the
 * screens do with theirs. [model] follows the node's events here, so a screen must not pass
 * them on too. [release] frees the [media] when the keeper closes.
 */
class MonitorKeeper(
    private val service: PeernsService,
    val node: Peerns,
    private val microphone: SoundLevels?,
    private val media: CallMedia?,
    private val release: () -> Unit = { media?.stop() },
) {
    val model = MonitorViewModel(node, microphone, media)

    // Events may come on any thread; the model takes them so. The capture types change on the
    // main thread, where the service's own calls run.
    private val events = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    private val main = MainScope()

    init {
        events.launch {
            node.events.catch { if (it !is PeernsException) throw it }.collect { model.onEvent(it) }
        }
        main.launch {
            model.state.map { it.armed != null }.distinctUntilChanged().collect { armed ->
                service.setCapturing(CAPTURE_OWNER, camera = armed && media != null, microphone = armed)
            }
        }
    }

    /**
     * The node stops (or a new one replaces it): the sound alert stops listening and the stream's
     * media stops, then [release]. The claims stay with the service (it goes, or the next
     * keeper's first state, not armed, lets them go).
     */
    fun close() {
        events.cancel()
        main.cancel()
        microphone?.stop()
        model.close().invokeOnCompletion { release() }
    }

    companion object {
        /** Whose camera and microphone claim the monitor's is ([PeernsService.setCapturing]). */
        const val CAPTURE_OWNER = "monitor"
    }
}
