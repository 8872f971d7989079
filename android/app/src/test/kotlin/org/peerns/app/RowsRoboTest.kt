package org.peerns.app

import android.app.Application
import android.view.View
import android.widget.LinearLayout
import android.widget.TextView
import kotlin.test.assertEquals
import kotlin.test.assertNotSame
import kotlin.test.assertSame
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config

/** A chat's rows on the real framework: an unchanged line keeps its view, a changed one is made again in place. */
@Config(sdk = [36])
@RunWith(RobolectricTestRunner::class)
class RowsRoboTest {
    private val app: Application = RuntimeEnvironment.getApplication()

    /** A line of a list: [id] names it, [text] is what it shows (a file's progress, an edit). */
    private data class Line(val id: String, val text: String)

    private val container = LinearLayout(app)
    private var made = 0
    private val rows = Rows<Line>(container, key = { it.id }, make = { line ->
        made++
        TextView(app).apply { text = line.text }
    })

    private fun children(): List<View> = (0 until container.childCount).map { container.getChildAt(it) }
    private fun texts() = children().map { (it as TextView).text.toString() }

    @Test
    fun onlyChangedLinesAreMadeAgainAndOrderFollowsTheItems() {
        rows.show(listOf(Line("a", "hello"), Line("f", "file 10 %"), Line("c", "bye")))
        assertEquals(listOf("hello", "file 10 %", "bye"), texts())
        assertEquals(3, made)
        val (a, f, c) = children()

        // The file's progress moves on and a line arrives: two rows made, the others kept as they are.
        rows.show(listOf(Line("a", "hello"), Line("f", "file 60 %"), Line("c", "bye"), Line("d", "new")))
        assertEquals(listOf("hello", "file 60 %", "bye", "new"), texts())
        assertEquals(5, made)
        assertSame(a, children()[0])
        assertNotSame(f, children()[1])
        assertSame(c, children()[2])

        // The same list again changes nothing.
        val before = children()
        rows.show(listOf(Line("a", "hello"), Line("f", "file 60 %"), Line("c", "bye"), Line("d", "new")))
        assertEquals(5, made)
        assertEquals(before, children())

        // A line deleted and two swapped: their views move, none is made.
        rows.show(listOf(Line("c", "bye"), Line("a", "hello"), Line("d", "new")))
        assertEquals(listOf("bye", "hello", "new"), texts())
        assertEquals(5, made)
        assertSame(c, children()[0])
        assertSame(a, children()[1])

        // Two items with one key: the first's row only. Nothing left: no rows.
        rows.show(listOf(Line("a", "hello"), Line("a", "again")))
        assertEquals(listOf("hello"), texts())
        rows.show(emptyList())
        assertEquals(0, container.childCount)
    }
}
