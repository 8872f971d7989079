package org.peerns.app

import android.view.View
import android.widget.Button
import kotlinx.coroutines.launch

/**
 * A call screen's "Share screen" / "Stop sharing" button: [share] (true) shares our screen
 * through the capture the user allows in the system's dialog (asked at each tap), [share]
 * (false) stops; [shared] says whether it is. The service holds the mediaProjection foreground
 * type only while a share runs or starts: [show] gives it back otherwise.
 */
class ScreenShareButton(
    private val host: Host,
    private val media: AndroidCallMedia?,
    private val shared: () -> Boolean,
    private val share: suspend (Boolean) -> Boolean,
) {
    // A share the user allowed is starting: the mediaProjection type is claimed for it.
    private var pending = false

    val button: Button = host.ui.button("Share screen") { tapped() }

    private fun tapped() {
        if (shared()) {
            host.scope.launch { share(false) }
            return
        }
        // A share starting already: no second consent (it would stop the first capture).
        if (pending) return
        val media = media ?: return
        host.withScreenCapture(media) {
            pending = true
            host.scope.launch {
                try {
                    // Not shared after all (the call ended meanwhile, say): the capture goes back.
                    if (!share(true)) media.dropScreenCapture()
                } finally {
                    pending = false
                    if (!shared()) host.service?.setScreenShared(false)
                }
            }
        }
    }

    /**
     * Shows whether our screen is shared ([on]) and whether a share may start ([available]);
     * without a share running or starting, the mediaProjection type goes (the share may also
     * have ended from the system's controls, or with the call).
     */
    fun show(on: Boolean, available: Boolean) {
        button.text = if (on) "Stop sharing" else "Share screen"
        button.visibility = if (media != null && available) View.VISIBLE else View.GONE
        if (!pending && !on) host.service?.setScreenShared(false)
    }
}
