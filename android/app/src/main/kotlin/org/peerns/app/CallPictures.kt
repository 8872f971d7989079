package org.peerns.app

import android.content.Context
import android.graphics.Color
import android.graphics.drawable.GradientDrawable
import android.view.Gravity
import android.view.View
import android.view.ViewGroup
import android.widget.LinearLayout
import android.widget.TextView

/**
 * A group call's grid of pictures, two to a row, each a [PictureView] that [media] draws its
 * sender's video or screen on ([AndroidCallMedia.setPicture], bound while the surface exists).
 * [show] keeps the view of every picture that stays in its place, so its decoder goes on (one
 * that moves keeps its view but restarts); a place that changes hands gets a new view (no last
 * frame of someone else under the new name). Gone without media (nothing would be drawn).
 */
class CallPictures(private val context: Context, private val media: AndroidCallMedia?) {
    private val ui = Ui(context)

    /** The grid: rows of up to two pictures. */
    val root: LinearLayout = ui.column().apply { visibility = if (media == null) View.GONE else View.VISIBLE }
    private val places = mutableListOf<Picture>()

    /** One place: [sender]'s [kind] (`video` or `screen`) on [surface], named in [label]. */
    private inner class Picture(val sender: String, val kind: String, label: String) {
        val surface = PictureView(context).apply { bind { media?.setPicture(sender, kind, it) } }
        val name: TextView = ui.text(label)
        val view: LinearLayout = ui.column().apply {
            addView(surface)
            addView(name)
            ui.dp(3).let { setPadding(it, it, it, it) }
        }

        fun release() {
            (view.parent as? ViewGroup)?.removeView(view)
            media?.setPicture(sender, kind, null)
        }
    }

    /**
     * Shows [pictures] (a sender's fingerprint and what of it: `video` or `screen`) in place order,
     * each named by [name], those in [speaking] framed in green.
     */
    fun show(pictures: List<Pair<String, String>>, speaking: Collection<String>, name: (String) -> String) {
        val held = places.associateBy { it.sender to it.kind }.toMutableMap()
        val next = pictures.map { (sender, kind) ->
            held.remove(sender to kind) ?: Picture(sender, kind, name(sender) + if (kind == "screen") " (screen)" else "")
        }
        held.values.forEach(Picture::release)
        places.clear()
        places.addAll(next)
        layOut(speaking)
    }

    private fun layOut(speaking: Collection<String>) {
        val rows = places.chunked(2)
        // A picture already in its row and column is left alone (moving a view ends its surface).
        for ((r, pair) in rows.withIndex()) {
            val row = root.getChildAt(r) as? LinearLayout ?: ui.row().also { root.addView(it) }
            for ((column, p) in pair.withIndex()) {
                if (row.getChildAt(column) === p.view) continue
                (p.view.parent as? ViewGroup)?.removeView(p.view)
                if (column < row.childCount) row.removeViewAt(column)
                row.addView(p.view, column, LinearLayout.LayoutParams(0, LinearLayout.LayoutParams.WRAP_CONTENT, 1f))
            }
            while (row.childCount > pair.size) row.removeViewAt(row.childCount - 1)
        }
        while (root.childCount > rows.size) root.removeViewAt(root.childCount - 1)
        // One picture gets the width of the screen; more get half each.
        val height = ui.dp(if (places.size == 1) 240 else 140)
        for (p in places) {
            if (p.surface.layoutParams?.height != height) {
                p.surface.layoutParams = LinearLayout.LayoutParams(LinearLayout.LayoutParams.MATCH_PARENT, height).apply {
                    gravity = Gravity.CENTER_HORIZONTAL
                }
            }
            p.view.background = if (p.sender in speaking) speakingFrame() else null
        }
    }

    private fun speakingFrame() = GradientDrawable().apply {
        setStroke(ui.dp(3), SPEAKING)
        cornerRadius = ui.dp(6).toFloat()
    }

    private companion object {
        val SPEAKING: Int = Color.rgb(0x2e, 0x7d, 0x32)
    }
}
