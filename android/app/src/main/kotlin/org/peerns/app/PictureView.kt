package org.peerns.app

import android.content.Context
import android.os.Handler
import android.os.Looper
import android.view.SurfaceHolder
import android.view.SurfaceView
import kotlin.math.roundToInt

/**
 * A SurfaceView that takes the shape of the picture drawn on it: within the room its layout
 * gives, as large as the picture's aspect ratio allows (a phone held upright sends a tall
 * picture, a browser a wide one; neither is stretched nor cropped). Fills its room until the
 * picture's size is known.
 */
class PictureView(context: Context) : SurfaceView(context) {
    // Width over height of the picture, 0 while unknown. Read and written on the UI thread.
    private var aspect = 0f
    private val main = Handler(Looper.getMainLooper())

    /** The surface goes to [to] while it exists, as a [Picture] whose size shapes this view; null once it goes. */
    fun bind(to: (Picture?) -> Unit) = holder.addCallback(object : SurfaceHolder.Callback {
        override fun surfaceCreated(holder: SurfaceHolder) = to(Picture(holder.surface, ::showSize))

        override fun surfaceChanged(holder: SurfaceHolder, format: Int, width: Int, height: Int) = Unit

        override fun surfaceDestroyed(holder: SurfaceHolder) = to(null)
    })

    /** The picture is [width] × [height] as drawn (from any thread): the view takes its shape. */
    fun showSize(width: Int, height: Int) {
        if (width <= 0 || height <= 0) return
        val next = width.toFloat() / height
        // Not View.post: a view not attached yet would hold it until it is.
        main.post {
            if (next != aspect) {
                aspect = next
                requestLayout()
            }
        }
    }

    override fun onMeasure(widthMeasureSpec: Int, heightMeasureSpec: Int) {
        super.onMeasure(widthMeasureSpec, heightMeasureSpec)
        if (aspect <= 0f) return
        val (width, height) = fit(measuredWidth, measuredHeight, aspect)
        setMeasuredDimension(width, height)
    }

    companion object {
        /** The largest width and height of ratio [aspect] (width over height) within [width] × [height]. */
        fun fit(width: Int, height: Int, aspect: Float): Pair<Int, Int> =
            if (width > height * aspect) (height * aspect).roundToInt() to height else width to (width / aspect).roundToInt()
    }
}
