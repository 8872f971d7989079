package org.peerns.app

import android.app.Application
import android.os.Looper
import android.view.SurfaceView
import android.view.View
import android.view.ViewGroup
import android.widget.LinearLayout
import android.widget.TextView
import kotlin.test.assertEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNotSame
import kotlin.test.assertNull
import kotlin.test.assertSame
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config

/** The group call's grid of pictures on the real framework: places kept, rows of two, speakers framed. */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class CallPicturesRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()

    /** The grid's places, row by row: each place's column (picture, then its name). */
    private fun places(grid: CallPictures): List<List<LinearLayout>> = (0 until grid.root.childCount).map { r ->
        val row = grid.root.getChildAt(r) as LinearLayout
        (0 until row.childCount).map { row.getChildAt(it) as LinearLayout }
    }

    private fun LinearLayout.surface() = getChildAt(0) as SurfaceView
    private fun LinearLayout.name() = (getChildAt(1) as TextView).text.toString()

    @Test
    fun placesAreKeptRowsHoldTwoAndSpeakersAreFramed() {
        val grid = CallPictures(app, null)
        // Without media nothing could be drawn: the grid is not shown.
        assertEquals(View.GONE, grid.root.visibility)
        val name = { fp: String -> fp.uppercase() }

        grid.show(listOf("a" to "video", "b" to "video", "c" to "video"), listOf("b"), name)
        var rows = places(grid)
        assertEquals(listOf(2, 1), rows.map { it.size })
        assertEquals(listOf("A", "B", "C"), rows.flatten().map { it.name() })
        val (a, b, c) = rows.flatten().map { it.surface() }
        // b speaks: its place is framed, the others not.
        assertNull(rows[0][0].background)
        assertNotNull(rows[0][1].background)
        assertEquals(LinearLayout.LayoutParams.MATCH_PARENT, a.layoutParams.width)

        // b's place goes to d: a and c keep their views, never taken out of the grid (their
        // surfaces, and so their decoders, go on); d gets a new one.
        val removed = mutableListOf<View>()
        for (r in 0 until grid.root.childCount) {
            (grid.root.getChildAt(r) as LinearLayout).setOnHierarchyChangeListener(object : ViewGroup.OnHierarchyChangeListener {
                override fun onChildViewAdded(parent: View, child: View) = Unit
                override fun onChildViewRemoved(parent: View, child: View) {
                    removed.add(child)
                }
            })
        }
        val kept = listOf(rows[0][0], rows[1][0])
        grid.show(listOf("a" to "video", "d" to "video", "c" to "video"), emptyList(), name)
        assertEquals(listOf<View>(rows[0][1]), removed)
        rows = places(grid)
        assertSame(a, rows[0][0].surface())
        assertEquals(kept, listOf(rows[0][0], rows[1][0]))
        assertNotSame(b, rows[0][1].surface())
        assertEquals("D", rows[0][1].name())
        assertSame(c, rows[1][0].surface())
        assertNull(rows[0][1].background)

        // a shares the screen: a new view named so; the others stay.
        grid.show(listOf("a" to "screen", "d" to "video", "c" to "video"), emptyList(), name)
        rows = places(grid)
        assertNotSame(a, rows[0][0].surface())
        assertEquals("A (screen)", rows[0][0].name())
        assertSame(c, rows[1][0].surface())

        // Only c left: one row, one place, the same view, taller.
        grid.show(listOf("c" to "video"), emptyList(), name)
        rows = places(grid)
        assertEquals(listOf(1), rows.map { it.size })
        assertSame(c, rows[0][0].surface())
        val tall = c.layoutParams.height
        grid.show(listOf("c" to "video", "e" to "video"), emptyList(), name)
        assertNear(tall * 140 / 240, c.layoutParams.height, 1)

        // Nobody: an empty grid.
        grid.show(emptyList(), emptyList(), name)
        assertEquals(0, grid.root.childCount)
    }

    private fun assertNear(expected: Int, actual: Int, tolerance: Int) =
        kotlin.test.assertTrue(kotlin.math.abs(expected - actual) <= tolerance, "$actual is not $expected ± $tolerance")

    @Test
    fun aPictureViewTakesThePicturesShapeWithinItsRoom() {
        val view = PictureView(app)
        val exactly = { px: Int -> View.MeasureSpec.makeMeasureSpec(px, View.MeasureSpec.EXACTLY) }
        // Unknown size: it fills its room.
        view.measure(exactly(1000), exactly(480))
        assertEquals(1000 to 480, view.measuredWidth to view.measuredHeight)
        // A phone held upright (480x640 as drawn): as high as the room, narrower.
        view.showSize(480, 640)
        shadowOf(Looper.getMainLooper()).idle()
        view.measure(exactly(1000), exactly(480))
        assertEquals(360 to 480, view.measuredWidth to view.measuredHeight)
        // A wide picture in a tall room: as wide as the room, lower.
        view.showSize(1280, 720)
        shadowOf(Looper.getMainLooper()).idle()
        view.measure(exactly(640), exactly(1000))
        assertEquals(640 to 360, view.measuredWidth to view.measuredHeight)
    }
}
